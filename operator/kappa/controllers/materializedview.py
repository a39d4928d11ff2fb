"""MaterializedViews: observe the alias, the StreamJob that serves the view and its ReplayRuns → decide
(machines/view_switch.py) → switch with compare-and-swap when the view itself must move (first version, a
pin) → status: versions, active and previous. Cutovers of ReplayRuns are made by the runs and accepted
here."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from pydantic import ValidationError

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable
from kappa.adapters.kube import Kube
from kappa.adapters.serving import ServedView
from kappa.api.base import API_VERSION, GROUP, VERSION
from kappa.api.conditions import condition, progressing, stalled
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.streamjob import StreamJobSpec
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
from kappa.controllers.status import once, ts, unless_terminating, write_status
from kappa.controllers.view_retention import RETENTION, forget_removed, mark_removing, retired
from kappa.controllers.watches import copies
from kappa.machines import replay
from kappa.machines.decision import Event
from kappa.machines.intake import intake_materializedview
from kappa.machines.view_switch import ViewObserved, decide_view

INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))


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
        obj = await self.kube.get(API_VERSION, "MaterializedView", namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        now = datetime.now(UTC)
        generation = int(obj["metadata"]["generation"])
        status: dict[str, Any] = obj.get("status") or {}
        try:
            spec = MaterializedViewSpec.model_validate(obj["spec"])
        except ValidationError:
            invalid = intake_materializedview(obj["spec"], status, generation)
            await write_status(
                self.kube, "MaterializedView", obj, {}, invalid.conditions, invalid.events, generation, now
            )
            return
        patch: dict[str, Any] = {"backend": spec.backend.type}
        if self.jobs is not None:
            jobs = jobs_serving(copies(self.jobs, (namespace, name)), name)
        else:
            jobs = jobs_serving(await self.kube.select(API_VERSION, "StreamJob", namespace, ""), name)
        if len(jobs) > 1:
            message = "several StreamJobs name this view in spec.output.view: " + ", ".join(
                sorted(j["metadata"]["name"] for j in jobs)
            )
            await self._write(
                obj, patch, stalled("AmbiguousJob", message), once(status, "AmbiguousJob", message), now
            )
            return
        job_obj = jobs[0] if jobs else None
        first = (
            []
            if status.get("observedGeneration") == generation
            else intake_materializedview(obj["spec"], status, generation).events
        )  # "Accepted", once per spec
        if job_obj is None and not status.get("activeVersion") and not spec.active_version:
            message = f"no StreamJob names {name} in spec.output.view yet; nothing to serve"
            await self._write(obj, patch, progressing("AwaitingFirstVersion", message), first, now)
            return
        job: StreamJobSpec | None = None
        if job_obj is not None:
            with contextlib.suppress(ValidationError):
                job = StreamJobSpec.model_validate(job_obj["spec"])
        if self.runs is not None:
            listed = (
                copies(self.runs, (namespace, job_obj["metadata"]["name"])) if job_obj is not None else []
            )
        else:
            listed = await self.kube.select(API_VERSION, "ReplayRun", namespace, "")
        runs = [
            r
            for r in listed
            if job_obj is not None
            and (r.get("spec") or {}).get("jobRef", {}).get("name") == job_obj["metadata"]["name"]
        ]
        kafka = None
        if job is not None:
            try:
                connection = await kafka_connection(self.kube, job, namespace)
            except KafkaConnectionError as exc:
                connection = None
                if spec.backend.type == "configMap":  # it reads the job's output topics: it needs Kafka
                    message = f"StreamJob {(job_obj or {}).get('metadata', {}).get('name')}: {exc.message}"
                    events = once(status, exc.reason, message)
                    await self._write(obj, patch, stalled(exc.reason, message), events, now)
                    return
            kafka = self.lag.monitor(connection).admin if connection else None
        try:
            view = await open_view(self.kube, namespace, spec, kafka)
            target_physical = await view.target()
        except (ViewUnavailable, AliasError) as exc:
            message = str(exc)
            await self._write(
                obj,
                patch,
                stalled("BackendUnavailable", message),
                once(status, "BackendUnavailable", message),
                now,
            )
            return
        known = _known_versions(status, job_obj, runs, spec.active_version)

        lineage = ((job_obj or {}).get("status") or {}).get("outputVersions") or {}

        def physical(version: str | None) -> str | None:
            if version is None or job is None:
                return None
            for r in runs:  # a run may name its own output
                rs = r.get("spec") or {}
                out = (rs.get("output") or {}).get("table" if spec.backend.type == "postgres" else "topic")
                if rs.get("version") == version and out:
                    return str(out)
            return physical_name(job, spec, version, lineage)

        target = _version_of(target_physical, known, physical)
        job_active = ((job_obj or {}).get("status") or {}).get("activeVersion")
        # Only the versions the view might switch to by itself need their table or topic looked up.
        wanted = {v for v in (spec.active_version, job_active) if v and v != target}
        available = frozenset([v for v in wanted if (p := physical(v)) and await _exists(view, p)])
        explained = frozenset(v for r in runs for v in [_explains(r)] if v is not None)
        seen = ViewObserved(
            target=target,
            recorded=status.get("activeVersion"),
            recorded_previous=status.get("previousVersion"),
            pin=spec.active_version,
            job_active=job_active,
            explained=explained,
            available=available,
            stalled=_stalled(status),
        )
        decision = decide_view(seen)
        active, previous = decision.active, decision.previous
        events = list(decision.events)
        conditions = decision.conditions
        if decision.switch is not None:
            to = physical(decision.switch.to)
            assert to is not None
            try:
                crash_at("view:Switch", namespace, name)  # decided, not switched (failpoints.py)
                done = await view.cutover(to, expected=physical(decision.switch.expected))
                crash_at("view:Switch:1", namespace, name)  # switched, status not written
            except AliasMoved as exc:
                metrics.cutover_failures.labels(namespace, "MaterializedView", name, "AliasMoved").inc()
                message = str(exc)
                conditions = stalled("AliasMoved", message)
                events = once(status, "AliasMoved", message)
            except BackendUnavailable as exc:  # an outage, not a failed switch: said as one
                message = f"{exc}; the switch of {view.describe()} is retried"
                conditions = stalled("BackendUnavailable", message)
                events = once(status, "BackendUnavailable", message)
            except AliasError as exc:
                metrics.cutover_failures.labels(namespace, "MaterializedView", name, "SwitchFailed").inc()
                message = f"switching {view.describe()} failed, retried: {exc}"
                conditions = stalled("SwitchFailed", message)
                events = once(status, "SwitchFailed", message)
            else:
                previous = seen.recorded if seen.recorded != decision.switch.to else previous
                active = decision.switch.to
                was = seen.recorded or "nothing"
                message = f"{view.describe()} serves {active} (was {was}), in {done.duration_ms} ms"
                decision = decide_view(
                    ViewObserved(**{**seen.__dict__, "target": active, "recorded": active})
                )
                conditions = decision.conditions
                events.append(Event("Normal", "Switched", message))
                patch["lastCutover"] = ts(now)
                metrics.view_switches.labels(namespace, name).inc()
        if active != status.get("activeVersion") and decision.switch is None and active is not None:
            patch["lastCutover"] = ts(now)
        patch |= {
            "activeVersion": active,
            "previousVersion": previous,
            "versions": _versions(status, known, physical, active, previous, runs, spec.retain_versions, now),
        }
        # Outputs of retired versions beyond retainVersions (view_retention.py): intent first, then removal.
        reads = [target_physical, physical(active)]
        removals = RETENTION.plan(
            namespace,
            name,
            job,
            job_obj,
            runs,
            known,
            physical,
            active,
            previous,
            reads,
            spec.retain_versions,
            spec.active_version,
            now,
        )
        if removals:
            patch["versions"] = mark_removing(patch["versions"], removals, physical, now)
        events += retired(status.get("versions") or [], patch["versions"])
        await self._write(obj, patch, conditions, events, now)
        if removals and job is not None:
            removed, said = await RETENTION.remove(self.kube, namespace, name, job, view, kafka, removals)
            if removed or said:
                await self._write(
                    obj, {"versions": forget_removed(patch["versions"], removed)}, [], said, now
                )

    async def _write(
        self, obj: dict[str, Any], patch: dict[str, Any], conditions: Any, events: list[Event], now: datetime
    ) -> None:
        generation = int(obj["metadata"]["generation"])
        await write_status(self.kube, "MaterializedView", obj, patch, conditions, events, generation, now)


def _stalled(status: dict[str, Any]) -> str | None:
    """The reason of the Stalled condition while it holds."""
    found = condition(status.get("conditions"), "Stalled")
    return str(found.get("reason")) if found and found.get("status") == "True" else None


async def _exists(view: ServedView, physical: str) -> bool:
    try:
        return await view.exists(physical)
    except AliasError:
        return False


def _explains(run: dict[str, Any]) -> str | None:
    """The version a run switched the view to (or back to, after a rollback)."""
    status = run.get("status") or {}
    cut = status.get("cutover") or {}
    phase = status.get("phase")
    if phase in ("CuttingOver", "Observing", "Succeeded"):
        return cut.get("toVersion")
    if phase == "RolledBack":
        return cut.get("fromVersion")
    return None


def _known_versions(
    status: dict[str, Any], job_obj: dict[str, Any] | None, runs: list[dict[str, Any]], pin: str | None
) -> list[str]:
    """Every version the view may serve, oldest first."""
    seen: list[str] = []
    job_status = (job_obj or {}).get("status") or {}
    sources = [
        *(v.get("name") for v in status.get("versions") or []),
        *(h.get("version") for h in job_status.get("history") or []),
        *(d.get("version") for d in job_status.get("deployments") or []),
        job_status.get("activeVersion"),
        *((r.get("spec") or {}).get("version") for r in runs),
        pin,
    ]
    for version in sources:
        if version and version not in seen:
            seen.append(str(version))
    return seen


def _version_of(physical_now: str | None, known: list[str], physical: Any) -> str | None:
    if physical_now is None:
        return None
    for version in known:
        if physical(version) == physical_now:
            return version
    return f"({physical_now})"


def _versions(
    status: dict[str, Any],
    known: list[str],
    physical: Any,
    active: str | None,
    previous: str | None,
    runs: list[dict[str, Any]],
    retain: int,
    now: datetime,
) -> list[dict[str, Any]]:
    old = {v.get("name"): v for v in status.get("versions") or []}
    building = {
        (r.get("spec") or {}).get("version")
        for r in runs
        if ((r.get("status") or {}).get("phase") or "Pending") in replay.BEFORE_CUTOVER
    }
    entries = []
    for version in known:
        if version == active:
            state = "Active"
        elif version == previous:
            state = "Previous"
        elif version in building:
            state = "Building"
        else:
            state = "Retired"
        entries.append(
            {
                "name": version,
                "physical": physical(version) or "",
                "created": old.get(version, {}).get("created") or ts(now),
                "state": state,
            }
        )
    keep = [e for e in entries if e["state"] != "Retired"]
    retired = [e for e in entries if e["state"] == "Retired"]
    # retainVersions counts the active one; building versions are listed besides.
    room = max(retain - len([e for e in keep if e["state"] in ("Active", "Previous")]), 0)
    return (keep + retired[-room:] if room else keep)[-32:]


def _reconciler(memo: kopf.Memo) -> MaterializedViewReconciler:
    if not hasattr(memo, "views"):
        memo.views = MaterializedViewReconciler(Kube(), memo.lag)
        memo.view_locks = {}
    return memo.views  # type: ignore[no-any-return]


@kopf.on.startup()
async def share_view_reconciler(memo: kopf.Memo, **indexes: Any) -> None:
    """Built on the operator's memo before any handler runs. Kopf gives each object a shallow copy of that
    memo: built there, one reconciler (one API client, one lock table) serves every MaterializedView, and the
    views' resync shares its locks; built from a handler, it would live in that object's copy, one client per
    object. It reads the jobs serving a view and their runs from the watch-fed indexes
    (controllers/watches.py), not from two LISTs of the namespace per view per resync."""
    memo.views = MaterializedViewReconciler(
        Kube(), memo.lag, indexes["streamjobs_by_view"], indexes["replayruns_by_job"]
    )
    memo.view_locks = {}


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> None:
    reconciler = _reconciler(memo)
    async with memo.view_locks.setdefault((namespace, name), asyncio.Lock()):
        with metrics.reconciling("MaterializedView"), unless_terminating():
            await reconciler.reconcile(namespace, name)


@kopf.on.resume(GROUP, VERSION, "materializedviews")
@kopf.on.create(GROUP, VERSION, "materializedviews")
@kopf.on.update(GROUP, VERSION, "materializedviews", field="spec")
async def reconcile_materializedview(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.on.startup()
async def start_view_resync(memo: kopf.Memo, logger: kopf.Logger, **indexes: Any) -> None:
    """Views follow their job's runs every interval. A loop, not a Kopf timer: timers need a finalizer, which
    needs patch on the MaterializedView, and the operator must not be able to write a view's spec. The views
    come from a watch-fed index (controllers/watches.py): no LIST per round, and, under `kappa run -n`, only
    the watched namespaces' (a cluster-wide LIST there was refused by the namespaced Roles)."""
    views: kopf.Index[Hashable, Any] = indexes["materializedviews_by_key"]

    async def loop() -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            for key in list(views):
                namespace, name = cast(tuple[str, str], key)
                try:
                    await _locked(memo, namespace, name)
                except Exception as exc:  # the API server restarting must not end the loop
                    logger.warning("MaterializedView %s/%s: %s", namespace, name, exc)

    memo.view_resync = asyncio.create_task(loop(), name="kappa-view-resync")


@kopf.on.cleanup()
async def stop_view_resync(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "view_resync", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
