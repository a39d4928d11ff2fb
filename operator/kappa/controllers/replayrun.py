"""ReplayRuns: observe (the StreamJob, Kafka, the replay deployment, the view) → decide (machines/replay.py) →
record intent in status → act (seed the group, create the output, set the quota, deploy; cut over; clean up)
→ events. Level-triggered: create, resume, spec or annotation change, and a timer."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import UTC, datetime
from typing import Any

import kopf
from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable
from kappa.adapters.job_runtime import RuntimeUnavailable
from kappa.adapters.kafka import KafkaAdapterError, KafkaAdmin, KafkaConnection
from kappa.adapters.kube import ApiException, Kube, NotServed
from kappa.api.base import API_VERSION, GROUP, VERSION, duration
from kappa.api.conditions import stalled
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import (
    KafkaConnectionError,
    ViewUnavailable,
    kafka_connection,
)
from kappa.controllers.failpoints import acted, crash_at, intent
from kappa.controllers.replay_act import ReplayActions
from kappa.controllers.replay_context import (
    Context,
    offsets_of,
    replaced_version,
    replay_spec,
    replay_state,
)
from kappa.controllers.replay_observe import ReplayObservations
from kappa.controllers.status import dt, once, requested, ts, unless_terminating
from kappa.machines import replay, replay_abort, replay_phases
from kappa.machines.decision import Event
from kappa.machines.fko import deployment_view
from kappa.machines.intake import intake_replayrun
from kappa.machines.preflight import Check
from kappa.machines.runtime_facts import Deployment
from kappa.render import names
from kappa.render.replay import output_table, output_topic

APPROVE, ABORT, ROLLBACK = "kappa.dev/approve", "kappa.dev/abort", "kappa.dev/rollback"
INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))


class ReplayRunReconciler(ReplayObservations, ReplayActions):
    """observe → decide → record intent → act, for one run at a time (see _locked)."""

    # -- observe → decide → write → act ---------------------------------------------------------------

    async def reconcile(self, namespace: str, name: str) -> None:
        obj = await self.kube.get(API_VERSION, "ReplayRun", namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        now = datetime.now(UTC)
        generation = int(obj["metadata"]["generation"])
        status: dict[str, Any] = obj.get("status") or {}
        try:
            run = ReplayRunSpec.model_validate(obj["spec"])
        except ValidationError:
            invalid = intake_replayrun(obj["spec"], status, generation)
            await self._write(obj, {}, invalid.conditions, invalid.events, now)
            return
        state = replay_state(status)
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, run.job_ref.name)
        aborting_kept = (
            state.phase == "Failed"
            and state.reason in replay.KEPT_FOR_INSPECTION
            and bool((obj["metadata"].get("annotations") or {}).get(ABORT))
        )
        if state.phase in replay.FINAL and not aborting_kept:
            await self._finish(obj, run, job_obj, state, now)
            return
        first = (
            []
            if status.get("observedGeneration") == generation
            else intake_replayrun(obj["spec"], status, generation).events
        )  # "Accepted", once per spec
        if job_obj is None:
            # Argo CD may apply the run before its StreamJob: wait for it, under spec.timeouts.pending.
            created = dt(obj["metadata"]["creationTimestamp"]) or now
            waiting = replay_abort.waiting_for_job(
                state, created, duration(run.timeouts.pending), now, run.job_ref.name
            )
            nxt = waiting.state
            patch = {"phase": nxt.phase, "reason": nxt.reason, "enteredAt": ts(nxt.entered_at)}
            await self._write(obj, patch, waiting.conditions, [*first, *waiting.events], now)
            return
        try:
            job = StreamJobSpec.model_validate(job_obj["spec"])
        except ValidationError:
            message = f"StreamJob {run.job_ref.name} has an invalid spec; see its Stalled condition"
            await self._write(obj, {"phase": state.phase}, stalled("JobInvalid", message), [], now)
            return
        try:
            kafka = await kafka_connection(self.kube, job, namespace)
        except KafkaConnectionError as exc:
            # A Secret or key missing, or the credentials refused: said once, naming the Secret.
            events = once(status, exc.reason, exc.message)
            await self._write(obj, {"phase": state.phase}, stalled(exc.reason, exc.message), events, now)
            return
        view_name = job.output.view if run.until.live else None
        view_obj = (
            await self.kube.get(API_VERSION, "MaterializedView", namespace, view_name) if view_name else None
        )
        view_spec = None
        if view_obj is not None:
            with contextlib.suppress(ValidationError):
                view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
        ctx = Context(obj, run, job_obj, job, kafka, view_name, view_obj, view_spec, now)
        ctx.patch["view"] = view_name
        if kafka is None:
            message = "the StreamJob's Kafka bootstrap servers are unknown (spec.source.kafka)"
            await self._write(obj, {"phase": state.phase}, stalled("KafkaUnknown", message), [], now)
            return
        admin = self.lag.monitor(kafka).admin
        try:
            seen = await self._observe(ctx, state, admin)
        except (RuntimeUnavailable, BackendUnavailable, KafkaException) as exc:
            # An outage reads as one: said once, and the phase and its deadline stay as they are.
            reason, why = _outage(exc, admin)
            if reason is None:
                raise
            message = f"{why}; retrying"
            events = once(status, reason, message)
            await self._write(obj, {"phase": state.phase}, stalled(reason, message), events, now)
            return
        spec = replay_spec(run, view_name)
        decision = replay_phases.decide(state, seen, spec, now)
        self._record(ctx, decision, seen)
        events = [*first, *decision.events]
        if decision.state.phase != state.phase and not decision.events:  # every transition is an event
            events.append(Event("Normal", decision.state.phase, f"{state.phase} → {decision.state.phase}"))
        await self._write(obj, ctx.patch, decision.conditions, events, now)
        if decision.state.phase != state.phase:
            crash_at("replay-transition", namespace, f"{name} {state.phase}->{decision.state.phase}")
        intent("replayrun", namespace, name, {decision.state.phase} - {state.phase})  # a new phase
        self._track(ctx, decision.state.phase)
        try:
            await self._act(ctx, decision.actions, admin)
        except (RuntimeUnavailable, KafkaException) as exc:  # e.g. the broker went during the replay set-up
            reason, why = _outage(exc, admin)
            if reason is None:
                raise
            message = f"{why}; retrying"
            await self._write(obj, {}, stalled(reason, message), once(status, reason, message), now)
            return
        self._export(ctx, decision.state.phase)

    async def _observe(
        self, ctx: Context, state: replay.ReplayState, admin: KafkaAdmin
    ) -> replay.ReplayObserved:
        seen: dict[str, Any] = {}
        phase = state.phase
        # Approve and abort hold while their annotation is there (an early approve counts at the approval);
        # a rollback is a one-off request, acted on only when new. Every id seen is echoed into status.
        annotations = ctx.obj["metadata"].get("annotations") or {}
        approve, abort = annotations.get(APPROVE), annotations.get(ABORT)
        rollback = requested(ctx.obj, ROLLBACK, "rollback")
        handled = dict(ctx.status.get("handledRequests") or {})
        for key, value in (("approve", approve), ("abort", abort), ("rollback", rollback)):
            if value:
                handled[key] = value
        if handled != (ctx.status.get("handledRequests") or {}):
            ctx.patch["handledRequests"] = handled
        seen |= {"approve": bool(approve), "abort": bool(abort), "rollback": rollback is not None}
        if phase == "Pending":
            seen["holder"] = await self._holder(ctx)
        elif phase == "Preflight":
            seen["preflight"] = await self._preflight(ctx, admin)
        runtime = await self._runtime(ctx.namespace, ctx.job_name)
        if phase in ("Replaying", "CatchingUp"):
            fd = await runtime.get(ctx.namespace, ctx.deployment)
            seen["replay"] = deployment_view(fd) if fd else Deployment(exists=False)
            seen |= await self._progress(ctx, admin)
        if phase == "CatchingUp":
            found = self.lag.latest(ctx.group)
            if found is not None:
                lags = [found.lag_of(t, p) for (t, p) in offsets_of(ctx.status.get("startOffsets"))]
                seen["max_partition_lag"] = max(lags, default=0)
                seen["lag_status"] = found.status.status
        if phase == "Validating":
            seen["validation"] = await self._validate(ctx)
        if phase in ("Validating", "AwaitingApproval", "CuttingOver", "Observing") and ctx.view_spec:
            seen |= await self._alias(ctx, state)
        replaced = replaced_version(ctx.status)
        if phase == "Observing" and replaced:
            previous = names.deployment_name(ctx.job_name, replaced)
            fd = await runtime.get(ctx.namespace, previous)
            seen["previous_exists"] = fd is not None
            savepoint = deployment_view(fd).upgrade_savepoint_path if fd else None
            cut = dict(ctx.status.get("cutover") or {})
            if savepoint and cut.get("previousSavepoint") != savepoint:
                ctx.patch["cutover"] = {**cut, "previousSavepoint": savepoint}
        return replay.ReplayObserved(**seen)

    def _record(self, ctx: Context, decision: replay.ReplayDecision, seen: replay.ReplayObserved) -> None:
        """The decided state, and the intent of its actions, into the status patch."""
        nxt = decision.state
        before = ctx.status.get("phase") or "Pending"
        ctx.patch |= {
            "phase": nxt.phase,
            "reason": nxt.reason,
            "enteredAt": ts(nxt.entered_at),
            "phaseDeadline": ts(nxt.deadline),
            "caughtUpSince": ts(nxt.caught_up_since),
            "consumerGroup": ctx.group,
            "deployment": ctx.deployment,
            "output": {"topic": output_topic(ctx.job, ctx.run), "table": output_table(ctx.job, ctx.run)},
        }
        if nxt.phase != before:
            transitions = list(ctx.status.get("transitions") or [])
            transitions.append({"phase": nxt.phase, "at": ts(ctx.now), "reason": nxt.reason})
            ctx.patch["transitions"] = transitions[-64:]
            metrics.replay_transitions.labels(ctx.namespace, ctx.name, nxt.phase).inc()
            if nxt.phase == "Failed":
                metrics.replay_failures.labels(ctx.namespace, ctx.name, nxt.reason or "").inc()
        if seen.preflight is not None:
            ctx.patch["preflight"] = [_check(c) for c in seen.preflight]
        if seen.validation is not None:
            ctx.patch["validation"] = [_check(c) for c in seen.validation]
        if nxt.phase == "CuttingOver" and before != "CuttingOver":
            ctx.patch["cutover"] = {
                "view": ctx.view_name,
                "fromVersion": nxt.cutover_from,
                "replacedVersion": (ctx.job_obj.get("status") or {}).get("activeVersion"),
                "toVersion": nxt.cutover_to,
                "requestedAt": ts(ctx.now),
            }
        if nxt.phase == "Observing" and before == "CuttingOver":
            ctx.patch["cutover"] = {**(ctx.status.get("cutover") or {}), "at": ts(nxt.cut_over_at)}
            metrics.cutovers.labels(ctx.namespace, ctx.view_name or "").inc()
        if nxt.phase == "RolledBack" and before != "RolledBack":
            metrics.rollbacks.labels(ctx.namespace, ctx.job_name).inc()
        cleanups = replay.RemoveReplay | replay.DecommissionPrevious | replay.StopReplay
        switch_back = nxt.phase == "RolledBack" and before != "RolledBack"
        if switch_back or any(isinstance(a, cleanups) for a in decision.actions):
            ctx.patch["cleanup"] = "Pending"

    def _track(self, ctx: Context, phase: str) -> None:
        if phase in ("Replaying", "CatchingUp", "Validating", "AwaitingApproval"):
            labels = {"namespace": ctx.namespace, "job": ctx.job_name, "version": ctx.run.version}
            self.lag.track(ctx.connection, ctx.group, list(ctx.job.source.topics), labels)

    def _export(self, ctx: Context, phase: str) -> None:
        for p in replay_phases.PHASES:
            metrics.replay_phase.labels(ctx.namespace, ctx.name, p).set(1 if p == phase else 0)
        progress = ctx.patch.get("progress") or {}
        if progress.get("target"):
            metrics.replay_progress.labels(ctx.namespace, ctx.name).set(
                progress["consumed"] / progress["target"]
            )
        if progress.get("recordsPerSecond") is not None:
            metrics.replay_rate.labels(ctx.namespace, ctx.name).set(progress["recordsPerSecond"])
        metrics.set_replay_progress(ctx.namespace, ctx.name, progress)
        deadline = dt(ctx.patch.get("phaseDeadline"))
        metrics.set_timestamp(metrics.replay_phase_deadline, ctx.namespace, ctx.name, deadline)

    # -- actions --------------------------------------------------------------------------------------

    async def _act(self, ctx: Context, actions: list[replay.ReplayAction], admin: KafkaAdmin) -> None:
        for action in actions:
            try:
                if isinstance(action, replay.CreateReplay):
                    await self._create(ctx, admin)
                elif isinstance(action, replay.CutOver):
                    await self._cutover(ctx, action)
                elif isinstance(action, replay.ResumePrevious):
                    pass  # the StreamJob resumes it: it follows this run's RolledBack phase (live_version)
                elif isinstance(action, replay.PromoteVersion):
                    await self._unthrottle(ctx)  # live now: the StreamJob adopts it (it watches this run)
                elif isinstance(action, replay.RemoveReplay):
                    await self._cleanup(ctx.obj, ctx.run, ctx.job, admin)
                elif isinstance(action, replay.DecommissionPrevious):
                    await self._decommission(ctx.obj, ctx.run, admin)
                elif isinstance(action, replay.StopReplay):
                    await self._stop_replay(ctx.obj, ctx.run, admin)
                acted("replayrun", ctx.namespace, ctx.name)  # a failpoint after each side effect
            except BackendUnavailable as exc:  # an outage, not a refusal: the next reconcile looks again
                message = f"{exc}; {type(action).__name__} is retried"
                await self._write(
                    ctx.obj,
                    {},
                    stalled("BackendUnavailable", message),
                    once(ctx.status, "BackendUnavailable", message),
                    ctx.now,
                )
                return
            except AliasMoved as exc:
                metrics.cutover_failures.labels(ctx.namespace, "ReplayRun", ctx.name, "AliasMoved").inc()
                await self._write(
                    ctx.obj,
                    {},
                    stalled("AliasMoved", str(exc)),
                    once(ctx.status, "AliasMoved", str(exc)),
                    ctx.now,
                )
                return
            except (AliasError, KafkaAdapterError, ViewUnavailable, ApiException, NotServed) as exc:
                message = f"{type(action).__name__} failed, retried on the next reconcile: {exc}"
                await self._write(ctx.obj, {}, [], once(ctx.status, "ActionFailed", message), ctx.now)
                return

    async def _finish(
        self,
        obj: dict[str, Any],
        run: ReplayRunSpec,
        job_obj: dict[str, Any] | None,
        state: replay.ReplayState,
        now: datetime,
    ) -> None:
        """End states: finish a cleanup or decommission that a crash or a busy group interrupted."""
        status = obj.get("status") or {}
        if status.get("cleanup") != "Pending":
            return
        job = None
        admin = None
        if job_obj is not None:
            with contextlib.suppress(ValidationError):
                job = StreamJobSpec.model_validate(job_obj["spec"])
        if job is not None:
            admin = await self._admin_or_none(job, obj["metadata"]["namespace"])
        try:
            if state.phase == "Succeeded" and state.reason == "BackfillComplete":
                done = await self._stop_replay(obj, run, admin)
            elif state.phase == "Succeeded":
                done = await self._decommission(obj, run, admin)
            elif state.phase == "Failed" and state.reason in replay.KEPT_FOR_INSPECTION:
                done = await self._stop_replay(obj, run, admin)
            elif state.phase in ("Aborted", "Failed"):
                done = await self._cleanup(obj, run, job, admin)
            elif state.phase == "RolledBack" and job_obj is not None and job is not None:
                done = await self._switch_back(obj, run, job_obj, job, state, now)
            else:
                done = True
        except (AliasError, KafkaAdapterError, ViewUnavailable, ApiException) as exc:
            if replay.cleanup_overdue(state, duration(run.timeouts.cleanup), now):
                await self._cleanup_failed(obj, status, f"the last attempt failed: {exc}", now)
                return
            await self._write(
                obj, {}, [], once(status, "CleanupFailed", f"cleanup failed, retrying: {exc}"), now
            )
            return
        if not done and replay.cleanup_overdue(state, duration(run.timeouts.cleanup), now):
            await self._cleanup_failed(
                obj, status, "it was still waiting (e.g. for a consumer group to empty)", now
            )
            return
        if done:
            if state.reason == "BackfillComplete":
                message = "the backfill's deployment is removed; its output and consumer group stay"
            elif state.reason in replay.KEPT_FOR_INSPECTION:
                message = "the replay job is stopped; its output and group stay for inspection until an abort"
            elif state.phase == "Succeeded":
                message = "the previous version's deployment and consumer group are decommissioned"
            elif state.phase == "RolledBack":
                message = f"the view serves {state.cutover_from} again"
            else:
                message = "the replay's deployment, consumer group and output are removed"
            await self._write(obj, {"cleanup": "Done"}, [], [Event("Normal", "CleanedUp", message)], now)

    async def _cleanup_failed(
        self, obj: dict[str, Any], status: dict[str, Any], why: str, now: datetime
    ) -> None:
        """Past spec.timeouts.cleanup: no more retries; what is left is named, for a human to remove."""
        output = status.get("output") or {}
        left = ", ".join(
            f"{what} {value}"
            for what, value in (
                ("deployment", status.get("deployment")),
                ("consumer group", status.get("consumerGroup")),
                ("topic", output.get("topic")),
                ("table", output.get("table")),
            )
            if value
        )
        message = (
            f"cleanup did not complete within spec.timeouts.cleanup ({why}); check and remove by hand: {left}"
        )
        await self._write(
            obj,
            {"cleanup": "Failed"},
            stalled("CleanupFailed", message),
            [Event("Warning", "CleanupTimedOut", message)],
            now,
        )

    async def _switch_back(
        self,
        obj: dict[str, Any],
        run: ReplayRunSpec,
        job_obj: dict[str, Any],
        job: StreamJobSpec,
        state: replay.ReplayState,
        now: datetime,
    ) -> bool:
        """A rollback's switch, made sure of: RolledBack is written before it (intent first), so a crash
        between the two must not leave readers on the rolled-back version. Idempotent."""
        status = obj.get("status") or {}
        view_name = str(status.get("view") or "")
        if not view_name or state.cutover_from is None or state.cutover_to is None:
            return True
        view_obj = await self.kube.get(
            API_VERSION, "MaterializedView", obj["metadata"]["namespace"], view_name
        )
        if view_obj is None:
            return True
        view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
        kafka = await self._connection_or_none(job, obj["metadata"]["namespace"])
        ctx = Context(obj, run, job_obj, job, kafka, view_name, view_obj, view_spec, now)
        await self._cutover(ctx, replay.CutOver(str(view_name), state.cutover_to, state.cutover_from))
        return True

    async def finalize(self, namespace: str, name: str) -> bool:
        """Deleting a run before its cutover removes what it created; after it, the replayed version is the
        live one and stays."""
        obj = await self.kube.get(API_VERSION, "ReplayRun", namespace, name)
        if obj is None:
            return True
        status = obj.get("status") or {}
        phase = status.get("phase") or "Pending"
        created = any(t.get("phase") == "Replaying" for t in status.get("transitions") or [])
        if not created or phase in ("CuttingOver", "Observing", "Succeeded", "RolledBack"):
            return True  # nothing created (never remove what a failed preflight found), or it is live now
        kept = phase == "Failed" and status.get("reason") in replay.KEPT_FOR_INSPECTION
        if phase in ("Aborted", "Failed") and status.get("cleanup") == "Done" and not kept:
            return True
        try:
            run = ReplayRunSpec.model_validate(obj["spec"])
        except ValidationError:
            return True
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, run.job_ref.name)
        job = None
        if job_obj is not None:
            with contextlib.suppress(ValidationError):
                job = StreamJobSpec.model_validate(job_obj["spec"])
        admin = None
        if job is not None:
            admin = await self._admin_or_none(job, namespace)
        return await self._cleanup(obj, run, job, admin)

    async def _connection_or_none(self, job: StreamJobSpec, namespace: str) -> KafkaConnection | None:
        """The job's Kafka connection where Kafka is only needed to clean up: None when it cannot be built
        (the cleanup then waits, or leaves to the owner what needs Kafka)."""
        try:
            return await kafka_connection(self.kube, job, namespace)
        except KafkaConnectionError:
            return None

    async def _admin_or_none(self, job: StreamJobSpec, namespace: str) -> KafkaAdmin | None:
        kafka = await self._connection_or_none(job, namespace)
        return self.lag.monitor(kafka).admin if kafka else None


def _check(c: Check) -> dict[str, Any]:
    return {"name": c.name, "passed": c.passed, "reason": c.reason, "message": c.message[:2048]}


def _reconciler(memo: kopf.Memo) -> ReplayRunReconciler:
    if not hasattr(memo, "replayruns"):
        memo.replayruns = ReplayRunReconciler(Kube(), memo.lag)
        memo.replayrun_locks = {}
    return memo.replayruns  # type: ignore[no-any-return]


@kopf.on.startup()
async def share_replayrun_reconciler(memo: kopf.Memo, **_: Any) -> None:
    """Built on the operator's memo before any handler runs. Kopf gives each object a shallow copy of that
    memo: built there, one reconciler (one API client, one lock table) serves every ReplayRun; built from a
    handler, it would live in that object's copy, one client per object."""
    _reconciler(memo)


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> None:
    reconciler = _reconciler(memo)
    async with memo.replayrun_locks.setdefault((namespace, name), asyncio.Lock()):
        with metrics.reconciling("ReplayRun"), unless_terminating():
            await reconciler.reconcile(namespace, name)


@kopf.on.resume(GROUP, VERSION, "replayruns")
@kopf.on.create(GROUP, VERSION, "replayruns")
@kopf.on.update(GROUP, VERSION, "replayruns", field="spec")
@kopf.on.update(GROUP, VERSION, "replayruns", field="metadata.annotations")
async def reconcile_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


def _outage(exc: Exception, admin: KafkaAdmin) -> tuple[str | None, str]:
    """The reason an observation failed on an outage, and what to say; None when it was no outage."""
    if isinstance(exc, RuntimeUnavailable):
        return "FlinkUnavailable", str(exc)
    if isinstance(exc, BackendUnavailable):
        return "BackendUnavailable", str(exc)
    down = admin.health.unreachable  # a Kafka call that failed because the cluster did not answer
    if down:
        return "KafkaUnreachable", down
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is not None and error.retriable():  # transient, and retried by the adapter until its deadline
        return "KafkaUnreachable", f"Kafka at {admin.bootstrap_servers} did not answer: {error.str()}"
    return None, str(exc)


# backoff: a poll that failed (the API server away) is tried again after 5 s or the interval, not Kopf's 60 s:
# a run that switched its view while the API server was down records it as soon as it is back.
@kopf.timer(
    GROUP, VERSION, "replayruns", interval=INTERVAL, initial_delay=INTERVAL, backoff=max(INTERVAL, 5.0)
)
async def poll_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.on.delete(GROUP, VERSION, "replayruns")
async def finalize_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    namespace, name = str(meta["namespace"]), str(meta["name"])
    reconciler = _reconciler(memo)
    async with memo.replayrun_locks.setdefault((namespace, name), asyncio.Lock()):
        done = await reconciler.finalize(namespace, name)
    if not done:
        raise kopf.TemporaryError("removing what the run created", delay=2)
    metrics.forget_replay(namespace, name)
