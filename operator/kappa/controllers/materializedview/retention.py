"""Outputs of retired versions do not pile up: the MaterializedView controller, which knows retainVersions,
what the view reads and the versions' outputs, removes the table or topic of a retired version beyond
retainVersions once its rollback window is over, under the StreamJob's `deletionPolicy: Delete` only
(machines/retention.py decides). Intent first: the version is listed as Removing in the view's status before
anything is dropped; then one event names what went."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kube import Kube
from kappa.adapters.serving import ServedView
from kappa.api.base import duration
from kappa.api.materializedview import ViewVersion
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus
from kappa.controllers.materializedview.versions import RunSeen
from kappa.machines import replay, retention
from kappa.machines.decision import Event
from kappa.render.flink import kafka_topic_name

REMOVING = "Removing"
STRIMZI_APIS = ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]


@dataclass
class OutputRetention:
    """Remembers what this process saw removed (namespace, view, physical), not to look it up again on every
    reconcile, and the last failure said of each, not to repeat it on every poll."""

    gone: set[tuple[str, str, str]] = field(default_factory=set)
    failed: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def plan(
        self,
        namespace: str,
        view_name: str,
        job: StreamJobSpec | None,
        job_status: StreamJobStatus | None,
        runs: list[RunSeen],
        known: list[str],
        physical: Callable[[str | None], str | None],
        active: str | None,
        previous: str | None,
        reads: list[str | None],
        retain: int,
        pin: str | None,
        now: datetime,
    ) -> list[retention.Removal]:
        """`known`: every version the view knows, oldest first (as its status.versions lists them).
        `job_status`: the status of the StreamJob serving the view; None without one."""
        if job is None or job_status is None or job.output.deletion_policy != "Delete":
            return []
        protected, building, window = _guarded(job, job_status, runs, pin)
        superseded = retention.superseded_times(job_status.history)
        listed = [
            retention.OutputVersion(
                v,
                physical(v),
                "Active"
                if v == active
                else "Previous"
                if v == previous
                else "Building"
                if v in building
                else "Retired",
                superseded.get(v),
            )
            for v in known
        ]
        removals = retention.removable_outputs(
            listed,
            retain=retain,
            deletion_policy=job.output.deletion_policy,
            window=window,
            now=now,
            protected={p for p in protected if p},
            reads=reads,
        )
        return [r for r in removals if (namespace, view_name, r.physical) not in self.gone]

    async def remove(
        self,
        kube: Kube,
        namespace: str,
        view_name: str,
        job: StreamJobSpec,
        view: ServedView,
        kafka: KafkaAdmin | None,
        removals: list[retention.Removal],
    ) -> tuple[list[retention.Removal], list[Event]]:
        """Drop the tables or topics; what is gone (now or before), and the events to say of it: one for
        what was removed now."""
        done: list[retention.Removal] = []
        said: list[retention.Removal] = []  # not those found gone already (e.g. after a restart)
        events: list[Event] = []
        for removal in removals:
            key = (namespace, view_name, removal.physical)
            try:
                dropped = await self._drop(kube, namespace, job, view, kafka, removal.physical)
                if dropped is not None:
                    done.append(removal)
                    self.gone.add(key)
                    self.failed.pop(key, None)
                if dropped:
                    said.append(removal)
            except Exception as exc:  # a backend error is said once and retried at the next look
                message = (
                    f"removing {removal.physical} of retired {', '.join(removal.versions)} failed: {exc}"
                )
                if self.failed.get(key) != message:
                    self.failed[key] = message
                    events.append(Event("Warning", "RetiredOutputNotRemoved", message[:1024]))
        if said:
            outputs = "; ".join(f"{r.physical} ({', '.join(r.versions)})" for r in said)
            message = (
                f"removed the outputs of retired versions beyond retainVersions, their rollback window over "
                f"(deletionPolicy Delete): {outputs}"
            )
            events.append(Event("Normal", "RetiredOutputsRemoved", message[:1024]))
        return done, events

    async def _drop(
        self,
        kube: Kube,
        namespace: str,
        job: StreamJobSpec,
        view: ServedView,
        kafka: KafkaAdmin | None,
        physical: str,
    ) -> bool | None:
        """True: removed now; False: it was not there; None: nothing here can remove it."""
        if view.kind == "postgres":
            return await view.remove(physical)  # refuses the table the view reads
        if job.source.kafka.cluster_ref:
            # Strimzi's KafkaTopic (the StreamJob owns it under Delete): the topic operator deletes the topic.
            api = await kube.preferred("KafkaTopic", STRIMZI_APIS)
            if api is None:
                return None
            ns = job.source.kafka.namespace or namespace
            return await kube.delete(api, "KafkaTopic", ns, kafka_topic_name(physical))
        if kafka is not None:
            return await kafka.delete_topic(physical)
        return None


def _guarded(
    job: StreamJobSpec, job_status: StreamJobStatus, runs: list[RunSeen], pin: str | None
) -> tuple[set[str | None], set[str], timedelta]:
    """What no removal may touch (the pin, the job's versions in use, every version a run still works
    with), the versions runs are building, and the longest rollback window of the job and its runs."""
    up = job_status.upgrade
    protected = {
        pin,
        job.version,
        job_status.active_version,
        up.to_version if up else None,
        up.previous_version if up else None,
        *(d.version for d in job_status.deployments),
    }
    window = duration(job.upgrade.rollback_window)
    building: set[str] = set()
    for r in runs:
        if r.phase in replay.BEFORE_CUTOVER:
            building.add(str(r.version))
        if r.phase not in replay.FINAL:
            cut = r.status.cutover
            protected |= {r.version}
            if cut is not None:
                protected |= {cut.from_version, cut.to_version, cut.replaced_version}
        try:
            window = max(window, duration(ReplayRunSpec.model_validate(r.spec).rollback_window))
        except ValueError:
            continue
    return protected, building, window


def mark_removing(
    versions: list[ViewVersion],
    removals: list[retention.Removal],
    physical: Callable[[str | None], str | None],
    now: datetime,
) -> list[ViewVersion]:
    """status.versions with the versions whose output is about to go listed as Removing (the intent)."""
    going = {v for r in removals for v in r.versions}
    out = [v.model_copy(update={"state": REMOVING}) if v.name in going else v for v in versions]
    listed = {v.name for v in out}
    created = now.astimezone(UTC).replace(microsecond=0)
    out += [
        ViewVersion(name=v, physical=physical(v) or "", created=created, state=REMOVING)
        for r in removals
        for v in r.versions
        if v not in listed
    ]
    while len(out) > 32:  # the CRD's maxItems: retired entries make room first
        out.remove(next((v for v in out if v.state == "Retired"), out[0]))
    return out


def forget_removed(versions: list[ViewVersion], done: list[retention.Removal]) -> list[ViewVersion]:
    gone = {v for r in done for v in r.versions}
    return [v for v in versions if not (v.name in gone and v.state == REMOVING)]


def retired(before: list[ViewVersion], after: list[ViewVersion]) -> list[Event]:
    """One event per version that this look retired: it was Active, Previous or Building in status.versions,
    and is now Retired, Removing, or no longer listed (beyond retainVersions). Said once: the next look reads
    the state written with it."""
    now = {v.name: v.state for v in after}
    events = []
    for entry in before:
        was, name = entry.state, entry.name
        if was in ("Active", "Previous", "Building") and now.get(name) not in (
            "Active",
            "Previous",
            "Building",
        ):
            kept = "no longer listed (beyond retainVersions)" if name not in now else f"now {now[name]}"
            message = f"version {name} ({entry.physical or 'no output'}) retired: was {was}, {kept}"
            events.append(Event("Normal", "VersionRetired", message[:1024]))
    return events


RETENTION = OutputRetention()
