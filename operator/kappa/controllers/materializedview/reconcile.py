"""One look at a MaterializedView, in the shape of every controller: 1. load → 2. observe (the view's
backend, the StreamJob that serves it and that job's ReplayRuns: values only) → 3. decide (machines/
view_switch.py), and switch with compare-and-swap when the view itself must move (its first version, a
pin) → 4. write status once (retention's intent included) → 5. remove what retention retired. Cutovers of
ReplayRuns are made by the runs and accepted here."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable
from kappa.adapters.kube import Kube
from kappa.adapters.lag_monitor import LagMonitor
from kappa.adapters.serving import ServedView
from kappa.api.base import API_VERSION
from kappa.api.conditions import ConditionUpdate, progressing, stall_reason, stalled
from kappa.api.materializedview import MaterializedViewSpec, MaterializedViewStatus, ViewVersion
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus
from kappa.controllers.cluster import (
    KafkaConnectionError,
    ViewUnavailable,
    jobs_serving,
    kafka_connection,
    open_view,
    physical_name,
)
from kappa.controllers.failpoints import crash_at
from kappa.controllers.lag import LagTracking
from kappa.controllers.looks import OfObject
from kappa.controllers.materializedview.retention import RETENTION, forget_removed, mark_removing, retired
from kappa.controllers.materializedview.versions import (
    RunSeen,
    explains,
    known_versions,
    version_entries,
    version_of,
)
from kappa.controllers.status import once, ts, write_status
from kappa.controllers.watches import copies
from kappa.machines.decision import Event
from kappa.machines.intake import intake_materializedview
from kappa.machines.retention import Removal
from kappa.machines.view_switch import ViewDecision, ViewObserved, decide_view, switch_of


@dataclass(frozen=True)
class Halt:
    """A look that cannot go on: what it writes. The view is not switched."""

    patch: dict[str, Any]
    conditions: list[ConditionUpdate]
    events: list[Event]


@dataclass(frozen=True)
class Look(OfObject):
    """What one look saw of a view, the StreamJob that serves it and that job's ReplayRuns: values only."""

    obj: dict[str, Any]
    status: MaterializedViewStatus
    spec: MaterializedViewSpec
    now: datetime
    job_status: StreamJobStatus | None
    """The status of the StreamJob serving the view; None without one."""
    job: StreamJobSpec | None
    runs: list[RunSeen]
    monitor: LagMonitor | None
    view: ServedView
    target_physical: str | None
    """The table or topic the view reads now."""
    known: list[str]

    def physical(self, version: str | None) -> str | None:
        """The table or topic of a version: a run may name its own output; else the job's naming."""
        if version is None or self.job is None:
            return None
        key = "table" if self.spec.backend.type == "postgres" else "topic"
        for r in self.runs:
            out = (r.spec.get("output") or {}).get(key)
            if r.version == version and out:
                return str(out)
        lineage = self.job_status.output_versions if self.job_status else {}
        return physical_name(self.job, self.spec, version, lineage)


@dataclass(frozen=True)
class Outcome:
    """The view decision after the view's own switch, if it made one."""

    decision: ViewDecision
    """Decided again after a switch that went through; as it was otherwise."""
    active: str | None
    previous: str | None
    conditions: list[ConditionUpdate]
    events: list[Event]
    switched: bool = False


class MaterializedViewReconciler:
    def __init__(
        self,
        kube: Kube,
        lag: LagTracking,
        jobs: kopf.Index[Hashable, Any] | None = None,
        runs: kopf.Index[Hashable, Any] | None = None,
    ) -> None:
        self.kube = kube
        self.lag = lag
        # The watch-fed indexes (controllers/watches.py); without them, a LIST of the namespace per look.
        self.jobs = jobs
        self.runs = runs

    async def reconcile(self, namespace: str, name: str) -> None:
        obj = await self.kube.get(API_VERSION, "MaterializedView", namespace, name)  # 1. load
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        now = datetime.now(UTC)
        look = await self._observe(obj, now)  # 2. observe: values, nothing written
        if isinstance(look, Halt):
            await self._write(obj, look.patch, look.conditions, look.events, now)
            return
        seen = await _seen(look)
        outcome = await self._switch(look, seen, decide_view(seen))  # 3. decide; the view's own switch
        planned = _status(look, outcome)
        # 4. status, retention's intent in it
        await self._write(obj, planned.patch, outcome.conditions, planned.events, now)
        await self._remove_retired(look, planned.versions, planned.removals)  # 5. act on the intent written

    async def _remove_retired(self, look: Look, versions: list[ViewVersion], removals: list[Removal]) -> None:
        """Outputs of versions retired beyond retainVersions go (retention.py); status forgets them."""
        if not removals or look.job is None:
            return
        kafka = look.monitor.admin if look.monitor else None
        removed, said = await RETENTION.remove(
            self.kube, look.namespace, look.name, look.job, look.view, kafka, removals
        )
        if removed or said:
            kept = [v.wire() for v in forget_removed(versions, removed)]
            await self._write(look.obj, {"versions": kept}, [], said, look.now)

    async def _observe(self, obj: dict[str, Any], now: datetime) -> Look | Halt:
        """A valid spec, at most one StreamJob serving the view, and something to serve; else a Halt."""
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        generation = int(obj["metadata"]["generation"])
        status = MaterializedViewStatus.of(obj)
        try:
            spec = MaterializedViewSpec.model_validate(obj["spec"])
        except ValidationError:
            invalid = intake_materializedview(obj["spec"], status, generation)
            return Halt({}, invalid.conditions, invalid.events)
        patch: dict[str, Any] = {"backend": spec.backend.type}
        if self.jobs is not None:
            jobs = jobs_serving(copies(self.jobs, (namespace, name)), name)
        else:
            jobs = jobs_serving(await self.kube.select(API_VERSION, "StreamJob", namespace, ""), name)
        if len(jobs) > 1:
            message = "several StreamJobs name this view in spec.output.view: " + ", ".join(
                sorted(j["metadata"]["name"] for j in jobs)
            )
            return Halt(patch, stalled("AmbiguousJob", message), once(status, "AmbiguousJob", message))
        job_obj = jobs[0] if jobs else None
        if job_obj is None and not status.active_version and not spec.active_version:
            first = (
                []
                if status.observed_generation == generation
                else intake_materializedview(obj["spec"], status, generation).events
            )  # "Accepted", once per spec
            message = f"no StreamJob names {name} in spec.output.view yet; nothing to serve"
            return Halt(patch, progressing("AwaitingFirstVersion", message), first)
        return await self._connect(obj, status, spec, job_obj, now)

    async def _connect(
        self,
        obj: dict[str, Any],
        status: MaterializedViewStatus,
        spec: MaterializedViewSpec,
        job_obj: dict[str, Any] | None,
        now: datetime,
    ) -> Look | Halt:
        """The job's runs, its Kafka (a configMap view reads the job's output topics), the view's backend."""
        namespace = obj["metadata"]["namespace"]
        patch: dict[str, Any] = {"backend": spec.backend.type}
        job: StreamJobSpec | None = None
        if job_obj is not None:
            with contextlib.suppress(ValidationError):
                job = StreamJobSpec.model_validate(job_obj["spec"])
        runs = await self._runs(namespace, job_obj)
        monitor = None
        if job is not None:
            try:
                connection = await kafka_connection(self.kube, job, namespace)
            except KafkaConnectionError as exc:
                connection = None
                if spec.backend.type == "configMap":  # it reads the job's output topics: it needs Kafka
                    message = f"StreamJob {(job_obj or {}).get('metadata', {}).get('name')}: {exc.message}"
                    return Halt(patch, stalled(exc.reason, message), once(status, exc.reason, message))
            monitor = self.lag.monitor(connection) if connection else None
        try:
            view = await open_view(self.kube, namespace, spec, monitor.admin if monitor else None)
            target_physical = await view.target()
        except (ViewUnavailable, AliasError) as exc:
            message = str(exc)
            return Halt(
                patch, stalled("BackendUnavailable", message), once(status, "BackendUnavailable", message)
            )
        job_status = StreamJobStatus.of(job_obj) if job_obj is not None else None
        known = known_versions(status, job_status, runs, spec.active_version)
        return Look(obj, status, spec, now, job_status, job, runs, monitor, view, target_physical, known)

    async def _runs(self, namespace: str, job_obj: dict[str, Any] | None) -> list[RunSeen]:
        """The ReplayRuns of the job that serves the view."""
        if self.runs is not None:
            listed = (
                copies(self.runs, (namespace, job_obj["metadata"]["name"])) if job_obj is not None else []
            )
        else:
            listed = await self.kube.select(API_VERSION, "ReplayRun", namespace, "")
        return [
            RunSeen.of(r)
            for r in listed
            if job_obj is not None
            and (r.get("spec") or {}).get("jobRef", {}).get("name") == job_obj["metadata"]["name"]
        ]

    async def _switch(self, look: Look, seen: ViewObserved, decision: ViewDecision) -> Outcome:
        """The view's own switch (its first version, a pin), with compare-and-swap; a refusal is a stall."""
        switch = switch_of(decision)
        active, previous = decision.state.active, decision.state.previous
        if switch is None:
            return Outcome(decision, active, previous, decision.conditions, list(decision.events))
        namespace, name, status, view = look.namespace, look.name, look.status, look.view
        to = look.physical(switch.to)
        assert to is not None
        unchanged = (decision, active, previous)
        try:
            crash_at("view:Switch", namespace, name)  # decided, not switched (failpoints.py)
            # What the alias names now: a name no known version has (repointed by hand) is its own name.
            expected = (
                look.target_physical if switch.expected == seen.target else look.physical(switch.expected)
            )
            done = await view.cutover(to, expected=expected)
            crash_at("view:Switch:1", namespace, name)  # switched, status not written
        except AliasMoved as exc:
            metrics.cutover_failures.labels(namespace, "MaterializedView", name, "AliasMoved").inc()
            message = str(exc)
            return Outcome(*unchanged, stalled("AliasMoved", message), once(status, "AliasMoved", message))
        except BackendUnavailable as exc:  # an outage, not a failed switch: said as one
            message = f"{exc}; the switch of {view.describe()} is retried"
            return Outcome(
                *unchanged,
                stalled("BackendUnavailable", message),
                once(status, "BackendUnavailable", message),
            )
        except AliasError as exc:
            metrics.cutover_failures.labels(namespace, "MaterializedView", name, "SwitchFailed").inc()
            message = f"switching {view.describe()} failed, retried: {exc}"
            return Outcome(
                *unchanged, stalled("SwitchFailed", message), once(status, "SwitchFailed", message)
            )
        active = switch.to
        previous = seen.recorded if seen.recorded != active else previous
        message = (
            f"{view.describe()} serves {active} (was {seen.recorded or 'nothing'}), in {done.duration_ms} ms"
        )
        after = decide_view(ViewObserved(**{**seen.__dict__, "target": active, "recorded": active}))
        metrics.view_switches.labels(namespace, name).inc()
        said = [*decision.events, Event("Normal", "Switched", message)]
        return Outcome(after, active, previous, after.conditions, said, switched=True)

    async def _write(
        self, obj: dict[str, Any], patch: dict[str, Any], conditions: Any, events: list[Event], now: datetime
    ) -> None:
        generation = int(obj["metadata"]["generation"])
        await write_status(self.kube, "MaterializedView", obj, patch, conditions, events, generation, now)


async def _seen(look: Look) -> ViewObserved:
    """What the view decision reads: the version served, the one recorded, and what could be served."""
    target = version_of(look.target_physical, look.known, look.physical)
    job_active = look.job_status.active_version if look.job_status else None
    # Only the versions the view might switch to by itself need their table or topic looked up.
    wanted = {v for v in (look.spec.active_version, job_active) if v and v != target}
    available = frozenset([v for v in wanted if (p := look.physical(v)) and await _exists(look.view, p)])
    explained = frozenset(v for r in look.runs for v in [explains(r)] if v is not None)
    return ViewObserved(
        target=target,
        recorded=look.status.active_version,
        recorded_previous=look.status.previous_version,
        pin=look.spec.active_version,
        job_active=job_active,
        explained=explained,
        available=available,
        stalled=stall_reason(look.status.conditions),
    )


@dataclass(frozen=True)
class Planned:
    """What a look writes: the status patch, with status.versions in it as `versions`; the outputs retention
    removes once the patch is written (their intent is in it); the events of this look."""

    patch: dict[str, Any]
    versions: list[ViewVersion]
    removals: list[Removal]
    events: list[Event]


def _status(look: Look, outcome: Outcome) -> Planned:
    """The status patch: active, previous and the versions, with retention's removals marked first (their
    intent, retention.py); and the events of this look."""
    status, spec, now, active, previous = look.status, look.spec, look.now, outcome.active, outcome.previous
    patch: dict[str, Any] = {"backend": spec.backend.type}
    if outcome.switched:
        patch["lastCutover"] = ts(now)
    if active != status.active_version and not outcome.decision.actions and active is not None:
        patch["lastCutover"] = ts(now)
    versions = version_entries(
        status, look.known, look.physical, active, previous, look.runs, spec.retain_versions, now
    )
    # Outputs of retired versions beyond retainVersions: intent first, then removal.
    reads = [look.target_physical, look.physical(active)]
    removals = RETENTION.plan(
        look.namespace,
        look.name,
        look.job,
        look.job_status,
        look.runs,
        look.known,
        look.physical,
        active,
        previous,
        reads,
        spec.retain_versions,
        spec.active_version,
        now,
    )
    if removals:
        versions = mark_removing(versions, removals, look.physical, now)
    patch |= {"activeVersion": active, "previousVersion": previous, "versions": [v.wire() for v in versions]}
    events = [*outcome.events, *retired(status.versions, versions)]
    return Planned(patch, versions, removals, events)


async def _exists(view: ServedView, physical: str) -> bool:
    try:
        return await view.exists(physical)
    except AliasError:
        return False
