"""The StreamJob reconcile, one look at one job: load → observe (values, nothing written) → decide
(machines/streamjob.py chooses the canary, a replay or the savepoint upgrade, and builds the status) → write
status once, intent included → carry out the actions (deploy.py) → when to look again
(machines/cadence.py). The Kopf handlers and the schedule that call it are in streamjob.py."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from kappa.adapters import metrics
from kappa.adapters.job_runtime.seam import RuntimeUnavailable
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kube import ApiException, Kube
from kappa.api.base import API_VERSION, HandledRequests
from kappa.api.conditions import ConditionUpdate
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import CanaryStatus, StreamJobStatus
from kappa.controllers.failpoints import intent
from kappa.controllers.job_runtimes import Runtimes
from kappa.controllers.known import Known
from kappa.controllers.lag import LagTracking
from kappa.controllers.schedule import Schedule
from kappa.controllers.status import once, write_status
from kappa.controllers.streamjob import canary as canary_analysis
from kappa.controllers.streamjob import savepoints as savepoint_history
from kappa.controllers.streamjob.deploy import Deploy, api_message, carry_out, ensure_topic, retire
from kappa.controllers.streamjob.observe import INTERVAL, Halt, Look, observe, stall
from kappa.controllers.streamjob.replay import REPLAYING, replay_run_for
from kappa.controllers.watches import copies
from kappa.machines import cadence, canary, retention, savepoint_upgrade, upgrade
from kappa.machines import streamjob as machine
from kappa.machines.decision import Event
from kappa.machines.fko import job_update_time
from kappa.machines.lag import LagStatus
from kappa.render import names

ROLLBACK_ANNOTATION = "kappa.dev/rollback"
RESYNC = float(os.environ.get("KAPPA_RESYNC_INTERVAL", "600"))
"""Seconds between looks at a StreamJob at rest, when no watch event wakes it first."""
GONE = math.inf
"""What a look at a StreamJob that is gone or being deleted says: no next look."""


@dataclass(frozen=True)
class Planned:
    """A savepoint upgrade's decision and everything the look writes and does for it."""

    decision: upgrade.UpgradeDecision
    patch: dict[str, Any]
    conditions: list[ConditionUpdate]
    events: list[Event]
    actions: list[Any]
    savepoints: retention.SavepointPlan
    kafka_down: str | None


class StreamJobReconciler:
    """load → observe → decide (machines/streamjob.py) → write status → act → next look; one job at a time."""

    def __init__(
        self,
        kube: Kube,
        lag: LagTracking,
        deployments: kopf.Index[Hashable, Any] | None = None,
        runs: kopf.Index[Hashable, Any] | None = None,
    ) -> None:
        self.kube = kube
        self.lag = lag
        self.schedule = Schedule()
        self.known = Known()  # the jobs as last read or written, for looks the watch shows nothing new to
        # The watch-fed indexes (controllers/watches.py); without them, a LIST per look.
        self.deployments = deployments
        self.runs = runs
        listed = (lambda ns, job: copies(deployments, (ns, job))) if deployments is not None else None
        self.runtimes = Runtimes(kube, listed)

    async def reconcile(self, namespace: str, name: str, logger: logging.Logger) -> float | None:
        """The job is the copy the watch and the operator's own writes keep; a GET only when that copy may
        be older than the operator's last write (controllers/known.py)."""
        obj = self.known.current((namespace, name))  # 1. load
        if obj is None:
            obj = await self.kube.get(API_VERSION, "StreamJob", namespace, name)
            if obj is not None:
                self.known.remember(obj)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return GONE
        now = datetime.now(UTC)
        seen = await observe(self.kube, self.runtimes, self.runs, obj, now)  # 2. observe: values only
        if isinstance(seen, Halt):
            generation = int(obj["metadata"]["generation"])
            await self._write(obj, seen.patch, seen.conditions, seen.events, generation, now)
            return seen.following
        recorded = seen.status.canary
        canaried = None  # 3. decide: the canary first, then a replay, else the savepoint upgrade
        if machine.analyses(seen.job, seen.ustate, recorded.step if recorded else None):
            canaried = await self._canary_look(seen)
            if not canary.promotes(canary.from_status(seen.status), canaried[0]):
                await self._canary_only(seen, *canaried)
                return INTERVAL
        if machine.replays(seen.job, seen.ustate, seen.live):
            await self._replay_upgrade(seen)
            return INTERVAL
        planned = await self._decide_upgrade(seen, canaried)  # a canary's promotion is a savepoint upgrade
        await self._write(obj, planned.patch, planned.conditions, planned.events, seen.generation, now)  # 4.
        return await self._carry_out(seen, planned)  # 5. act, 6. when to look again

    async def _replay_upgrade(self, seen: Look) -> None:
        """strategy replay: the new version is a ReplayRun; the active version serves until its cutover, and
        the StreamJob adopts the replayed deployment then (see live_version)."""
        job, meta = seen.job, seen.obj["metadata"]
        found = seen.runs.get(job.version)
        run_name = found[0] if found else f"{meta['name']}-{job.version}"
        status = seen.status
        active = status.active_version
        step = machine.replay_step(
            job.version, active, run_name, found[2].phase if found else None, bool(found)
        )
        why = step.conditions[0]
        events = once(status, why.reason, why.message) if step.stalled else step.events
        await self._write(seen.obj, step.patch, step.conditions, events, seen.generation, seen.now)
        if step.create_run:
            await self.kube.apply(replay_run_for(meta["namespace"], meta["name"], meta["uid"], run_name, job))
        self._track(job, seen.namespace, seen.name, seen.kafka, [seen.ustate.active, job.version], None)

    async def _canary_only(self, seen: Look, decided: canary.CanaryDecision, entry: CanaryStatus) -> None:
        """A canary that does not promote (yet): its decision alone is written and carried out."""
        patch = {"canary": entry.whole()}
        await self._write(seen.obj, patch, decided.conditions, decided.events, seen.generation, seen.now)
        self._track(seen.job, seen.namespace, seen.name, seen.kafka, [seen.ustate.active], decided.state.step)
        await carry_out(self._deploy(seen), decided.actions)

    def _deploy(self, seen: Look) -> Deploy:
        return Deploy(seen.runtime, seen.job, seen.obj, seen.bootstrap, seen.runs, seen.versions)

    async def _canary_look(self, seen: Look) -> tuple[canary.CanaryDecision, CanaryStatus]:
        """The canary machine's decision, and status.canary after it."""
        status = seen.status
        decided, candidate = await canary_analysis.look(
            self.lag,
            seen.job,
            status,
            seen.ustate,
            seen.canaries,
            seen.kafka,
            seen.now,
            seen.namespace,
            seen.name,
        )
        return decided, machine.canary_status(decided, candidate, status.canary)

    async def _decide_upgrade(
        self, seen: Look, canaried: tuple[canary.CanaryDecision, CanaryStatus] | None
    ) -> Planned:
        status, ustate, now = seen.status, seen.ustate, seen.now
        requested = (seen.obj["metadata"].get("annotations") or {}).get(ROLLBACK_ANNOTATION)
        handled = status.handled_requests or HandledRequests()
        request = machine.rollback_request(requested, handled.rollback)
        promoted = canaried[0].state.version if canaried else None
        spec = machine.upgrade_spec(
            seen.job,
            seen.live,
            promoted,
            request is not None,
            asks_for_checkpoints=seen.runtime.asks_for_checkpoints,
        )
        lag_growing = self._lag_growing(seen.namespace, seen.name, ustate.target)
        decision = savepoint_upgrade.decide(ustate, upgrade.Observed(seen.views, lag_growing), spec, now)
        nxt = decision.state
        lineage = upgrade.output_versions(status.output_versions, ustate.active, nxt.active, nxt.target)
        decision = await self._hold_for_topic(seen, decision, lineage)
        patch: dict[str, Any] = {"canary": canaried[1].whole()} if canaried else {}
        if request:
            # Echoed whatever the outcome, so that `kubectl wait` and Argo CD can follow the request.
            patch["handledRequests"] = handled.model_copy(update={"rollback": request}).wire()
        patch |= self._status(seen, status, decision)
        runs = [run for _, _, run in seen.runs.values()]
        recorded = machine.savepoints(seen.job, status.savepoints, ustate, nxt, now)
        plan, said = savepoint_history.plan(recorded, nxt, sorted(seen.versions), runs, now)
        patch["savepoints"] = [e.wire() for e in plan.kept]  # disposals decided here: carried out after
        patch["outputVersions"] = lineage  # recorded before a version is deployed to write it
        patch["runtime"] = seen.runtime.name
        if seen.live.record:
            patch["promotion"] = seen.live.record.whole()
        down = self.lag.unreachable(seen.kafka)
        answering = bool(seen.kafka and self.lag.monitors.get(seen.kafka))
        reach, warned = machine.kafka_reachability(down, answering, seen.bootstrap)
        before = canaried[0] if canaried else None
        events = [*(before.events if before else []), *decision.events, *said, *warned]
        actions = [*(before.actions if before else []), *decision.actions]
        return Planned(decision, patch, [*decision.conditions, *reach], events, actions, plan, down)

    async def _hold_for_topic(
        self, seen: Look, decision: upgrade.UpgradeDecision, lineage: dict[str, str]
    ) -> upgrade.UpgradeDecision:
        """The serving version's output topic, applied; Ready waits for it."""
        serving = decision.state.target or decision.state.active
        if not serving or seen.job.suspend:
            return decision
        replayed = seen.runs.get(serving)
        run = replayed[1] if replayed else None
        ok, why = await ensure_topic(self.kube, seen.job, seen.obj, lineage.get(serving, serving), run)
        return machine.hold_for_topic(decision, ok, why)

    async def _carry_out(self, seen: Look, planned: Planned) -> float:
        """Act on what was written, then say when to look again."""
        nxt, status, now = planned.decision.state, seen.status, seen.now  # status: as written
        canary_step = status.canary.step if status.canary else None
        replaying = [run.to_version for _, _, run in seen.runs.values() if run.phase in REPLAYING]
        self._track(
            seen.job, seen.namespace, seen.name, seen.kafka, [nxt.active, nxt.target, *replaying], canary_step
        )
        try:
            await carry_out(self._deploy(seen), planned.actions)
        except (RuntimeUnavailable, ApiException) as exc:
            halt = (
                stall(status, "FlinkUnavailable", f"{exc}; retrying")
                if isinstance(exc, RuntimeUnavailable)
                else stall(status, "ChildRejected", f"the API server refused a child: {api_message(exc)}")
            )
            await self._write(seen.obj, halt.patch, halt.conditions, halt.events, seen.generation, now)
            return INTERVAL
        await retire(seen.runtime, seen.obj, status, seen.namespace, now)
        await self._dispose_savepoints(seen, planned)
        return self._next_look(seen, planned, canary_step, bool(replaying))

    async def _dispose_savepoints(self, seen: Look, planned: Planned) -> None:
        """Through the active version's deployment, while it runs and no upgrade is under way."""
        nxt = planned.decision.state
        steady = (
            nxt.step == "Idle" and nxt.active in seen.views and seen.views[nxt.active].job_state == "RUNNING"
        )
        active = nxt.active if steady else None
        done = await savepoint_history.dispose(seen.runtime, seen.obj, planned.savepoints, active)
        if done:
            kept, events = done
            patch = {"savepoints": [e.wire() for e in kept]}
            await self._write(seen.obj, patch, [], events, seen.generation, seen.now)

    def _next_look(self, seen: Look, planned: Planned, canary_step: str | None, replaying: bool) -> float:
        moving = cadence.Moving(
            watched_runtime=seen.runtime.name == "FlinkDeployment" and self.deployments is not None,
            step=planned.decision.state.step,
            requeue_after=planned.decision.requeue_after,
            ready=any(c.type == "Ready" and c.status for c in planned.conditions),
            canary=canary_step in ("Deploying", "Analysing", "Promoting"),
            replaying=replaying,
            acting=bool(planned.actions),
            disposing=bool(planned.savepoints.dispose),
            kafka_down=bool(planned.kafka_down),
        )
        written = seen.status.deployments
        retiring = [d.retire_at for d in written if d.retire_at is not None]
        return cadence.next_look(moving, retiring, seen.now, interval=INTERVAL, resync=RESYNC)

    def _track(
        self,
        job: StreamJobSpec,
        namespace: str,
        name: str,
        kafka: KafkaConnection | None,
        versions: list[str | None],
        canary_step: str | None,
    ) -> None:
        """The lag poll follows the active and target versions' groups, and the canary's while it runs."""
        if not kafka:
            return
        tracked = {v for v in versions if v}
        if canary_step in ("Deploying", "Analysing"):
            tracked.add(f"{job.version}-canary")
        self.lag.retain(namespace, name, {names.consumer_group(namespace, name, v) for v in tracked})
        for version in sorted(tracked):
            labels = {"namespace": namespace, "job": name, "version": version}
            self.lag.track(
                kafka, names.consumer_group(namespace, name, version), list(job.source.topics), labels
            )

    def _lag_growing(self, namespace: str, name: str, version: str | None) -> bool:
        if not version:
            return False
        found = self.lag.latest(names.consumer_group(namespace, name, version))
        return found is not None and found.status.status in (LagStatus.WARN, LagStatus.STOP)

    def _status(
        self, seen: Look, status: StreamJobStatus, decision: upgrade.UpgradeDecision
    ) -> dict[str, Any]:
        """The version fields of status (machines/streamjob.py), its Lag column, and their metrics."""
        nxt, namespace, name = decision.state, seen.namespace, seen.name
        deployed = {
            v: (names.deployment_name(name, v), job_update_time(seen.versions.get(v))) for v in seen.views
        }
        fields = machine.version_status(
            seen.job, status, seen.ustate, decision, seen.views, deployed, seen.now, seen.live.record
        )
        if machine.rolled_back(seen.ustate, nxt):
            metrics.streamjob_rollbacks.labels(namespace, name).inc()
        group = names.consumer_group(namespace, name, nxt.active) if nxt.active else None
        polled = self.lag.latest(group) if group else None
        metrics.set_active_version(namespace, name, nxt.active)
        # The Lag column: None until the first poll. Savepoints are bounded by savepoints.plan.
        return {"lag": polled.total if polled else None, **fields, "consumerGroup": group}

    async def _write(
        self,
        obj: dict[str, Any],
        patch: dict[str, Any],
        conditions: list[Any],
        events: list[Event],
        generation: int,
        now: datetime,
    ) -> None:
        """Intent first: the status is written before any child is touched."""
        written = await write_status(self.kube, "StreamJob", obj, patch, conditions, events, generation, now)
        if written is not None:
            self.known.remember(written)
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        reasons = [e.reason for e in events]
        metrics.streamjob_said(namespace, name, reasons, patch.get("phase"))
        intent("streamjob", namespace, name, reasons)
