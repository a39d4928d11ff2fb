"""One pass over one ReplayRun: load → observe (the concern modules return values, they write nothing) →
decide (machines/replay.py) → write status once, intent included → act (actions.CARRY_OUT) → metrics; and
when to look next (the decision's `requeue_after`, bounded by the interval). End states only finish their
cleanup (cleanup.finish)."""

from __future__ import annotations

import contextlib
import math
import os
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kappa.adapters.alias import BackendUnavailable
from kappa.adapters.job_runtime.seam import RuntimeUnavailable
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.errors import KafkaClientError
from kappa.adapters.kube import Kube
from kappa.api.base import API_VERSION, HandledRequests, duration
from kappa.api.conditions import stalled
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import KafkaConnectionError, kafka_connection
from kappa.controllers.failpoints import crash_at, intent
from kappa.controllers.lag import LagTracking
from kappa.controllers.replayrun import cutover, preflight, progress, validation
from kappa.controllers.replayrun.actions import act, outage
from kappa.controllers.replayrun.cleanup import finalize, finish
from kappa.controllers.replayrun.context import Context, Seen, Services, replay_spec, replay_state
from kappa.controllers.replayrun.record import export, record
from kappa.controllers.status import dt, once, requested, ts
from kappa.machines import replay, replay_abort, replay_phases
from kappa.machines.decision import Event
from kappa.machines.intake import intake_replayrun

INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))
"""The longest time between two looks at a run (`--reconcile-interval`)."""
GONE = math.inf
"""A run deleted, or being deleted (its finalizer is on it): no next look."""
APPROVE, ABORT, ROLLBACK = "kappa.dev/approve", "kappa.dev/abort", "kappa.dev/rollback"
WITH_VIEW = ("Validating", "AwaitingApproval", "CuttingOver", "Observing")
"""Phases that look at where the view points."""


class ReplayRunReconciler:
    """observe → decide → record intent → act, for one run at a time (see _locked in __init__)."""

    def __init__(self, kube: Kube, lag: LagTracking) -> None:
        self.services = Services(kube, lag)

    async def reconcile(self, namespace: str, name: str) -> float:
        """One look; the seconds until the next (GONE once the run is deleted or being deleted)."""
        s = self.services
        obj = await s.kube.get(API_VERSION, "ReplayRun", namespace, name)  # 1. load
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return GONE
        now = datetime.now(UTC)
        run = await self._run_spec(obj, now)
        if run is None:
            return INTERVAL
        state = replay_state(ReplayRunStatus.of(obj))
        job_obj = await s.kube.get(API_VERSION, "StreamJob", namespace, run.job_ref.name)
        if state.phase in replay.FINAL and not _aborting_kept(obj, state):
            await finish(s, obj, run, job_obj, state, now)  # an end state: its cleanup, nothing else
            return INTERVAL
        ctx = await self._context(obj, run, job_obj, state, now)
        if ctx is None:
            return INTERVAL
        admin = s.lag.monitor(ctx.connection).admin
        seen = await self._observe_or_stall(ctx, state, admin)  # 2. observe: values, no writes
        if seen is None:
            return INTERVAL
        spec = replay_spec(run, ctx.view_name)
        decision = replay_phases.decide(state, seen.machine, spec, now)  # 3. decide (pure)
        patch = record(ctx, decision, seen)
        await self._write_intent(ctx, state, decision, patch)  # 4. write once, intent included
        out = await act(s, ctx, decision.actions, admin)  # 5. act, through CARRY_OUT
        if out.writes:  # what the actions changed, or why they stopped
            await s.write(obj, out.patch, out.conditions, out.events, now)
        if out.stopped:  # an action failed: tried again at the interval
            return INTERVAL
        export(ctx, ReplayRunStatus.model_validate(patch))  # 6. metrics, from what was written
        return replay.next_look(decision, INTERVAL)  # 7. when to look again

    async def finalize(self, namespace: str, name: str) -> bool:
        return await finalize(self.services, namespace, name)

    async def _run_spec(self, obj: dict[str, Any], now: datetime) -> ReplayRunSpec | None:
        """The run's spec; None when it is invalid (said with a Stalled condition, once)."""
        try:
            return ReplayRunSpec.model_validate(obj["spec"])
        except ValidationError:
            generation = int(obj["metadata"]["generation"])
            invalid = intake_replayrun(obj["spec"], ReplayRunStatus.of(obj), generation)
            await self.services.write(obj, {}, invalid.conditions, invalid.events, now)
            return None

    async def _context(
        self,
        obj: dict[str, Any],
        run: ReplayRunSpec,
        job_obj: dict[str, Any] | None,
        state: replay.ReplayState,
        now: datetime,
    ) -> Context | None:
        """What the pass works on; None when it cannot go on (waiting for the StreamJob, or stalled: said)."""
        s, namespace, status = self.services, obj["metadata"]["namespace"], ReplayRunStatus.of(obj)
        generation = int(obj["metadata"]["generation"])
        accepted = (
            []
            if status.observed_generation == generation
            else intake_replayrun(obj["spec"], status, generation).events
        )  # "Accepted", once per spec
        if job_obj is None:
            await self._wait_for_job(obj, run, state, accepted, now)
            return None
        try:
            job = StreamJobSpec.model_validate(job_obj["spec"])
        except ValidationError:
            message = f"StreamJob {run.job_ref.name} has an invalid spec; see its Stalled condition"
            await s.write(obj, {"phase": state.phase}, stalled("JobInvalid", message), [], now)
            return None
        try:
            kafka = await kafka_connection(s.kube, job, namespace)
        except KafkaConnectionError as exc:
            # A Secret or key missing, or the credentials refused: said once, naming the Secret.
            events = once(status, exc.reason, exc.message)
            await s.write(obj, {"phase": state.phase}, stalled(exc.reason, exc.message), events, now)
            return None
        view_name, view_obj, view_spec = await self._view(job, run, namespace)
        if kafka is None:
            message = "the StreamJob's Kafka bootstrap servers are unknown (spec.source.kafka)"
            await s.write(obj, {"phase": state.phase}, stalled("KafkaUnknown", message), [], now)
            return None
        return Context(obj, run, job_obj, job, kafka, view_name, view_obj, view_spec, now, accepted)

    async def _wait_for_job(
        self,
        obj: dict[str, Any],
        run: ReplayRunSpec,
        state: replay.ReplayState,
        accepted: list[Event],
        now: datetime,
    ) -> None:
        """Argo CD may apply the run before its StreamJob: wait for it, under spec.timeouts.pending."""
        created = dt(obj["metadata"]["creationTimestamp"]) or now
        waiting = replay_abort.waiting_for_job(
            state, created, duration(run.timeouts.pending), now, run.job_ref.name
        )
        nxt = waiting.state
        patch = {"phase": nxt.phase, "reason": nxt.reason, "enteredAt": ts(nxt.entered_at)}
        await self.services.write(obj, patch, waiting.conditions, [*accepted, *waiting.events], now)

    async def _view(
        self, job: StreamJobSpec, run: ReplayRunSpec, namespace: str
    ) -> tuple[str | None, dict[str, Any] | None, MaterializedViewSpec | None]:
        """The MaterializedView a live run cuts over: its name, object and spec (None when invalid)."""
        view_name = job.output.view if run.until.live else None
        view_obj = (
            await self.services.kube.get(API_VERSION, "MaterializedView", namespace, view_name)
            if view_name
            else None
        )
        view_spec = None
        if view_obj is not None:
            with contextlib.suppress(ValidationError):
                view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
        return view_name, view_obj, view_spec

    async def _observe_or_stall(
        self, ctx: Context, state: replay.ReplayState, admin: KafkaAdmin
    ) -> Seen | None:
        try:
            return await self._observe(ctx, state, admin)
        except (RuntimeUnavailable, BackendUnavailable, KafkaClientError) as exc:
            # An outage reads as one: said once, and the phase and its deadline stay as they are.
            reason, why = outage(exc, admin)
            if reason is None:
                raise
            message = f"{why}; retrying"
            events = once(ctx.status, reason, message)
            await self.services.write(
                ctx.obj, {"phase": state.phase}, stalled(reason, message), events, ctx.now
            )
            return None

    async def _observe(self, ctx: Context, state: replay.ReplayState, admin: KafkaAdmin) -> Seen:
        """What the machine needs for this phase, and what was measured for status; nothing is written."""
        s, phase = self.services, state.phase
        seen, recorded = _requests(ctx)
        if phase == "Pending":
            seen["holder"] = await preflight.holder(s, ctx)
        elif phase == "Preflight":
            checked = await preflight.run_preflight(s, ctx, admin)
            seen["preflight"] = checked.checks
            recorded |= checked.recorded
        runtime = await s.runtime(ctx.namespace, ctx.job_name)
        if phase in ("Replaying", "CatchingUp"):
            seen["replay"] = await progress.replay_deployment(runtime, ctx)
            moved, measured = await progress.observe_progress(s.lag, ctx, admin)
            seen |= moved
            recorded |= measured
        if phase == "CatchingUp":
            seen |= progress.catch_up_lag(s.lag, ctx)
        if phase == "Validating":
            seen["validation"] = await validation.validate(s, ctx)
        if phase in WITH_VIEW and ctx.view_spec:
            seen |= await cutover.alias_seen(s, ctx, state)
        if phase == "Observing":
            previous, savepoint = await cutover.previous_seen(runtime, ctx)
            seen |= previous
            recorded |= savepoint
        return Seen(replay.ReplayObserved(**seen), recorded)

    async def _write_intent(
        self, ctx: Context, state: replay.ReplayState, decision: replay.ReplayDecision, patch: dict[str, Any]
    ) -> None:
        """The pass's one status write, before any side effect; then the failpoints of a new phase."""
        events = [*ctx.accepted, *decision.events]
        if decision.state.phase != state.phase and not decision.events:  # every transition is an event
            events.append(Event("Normal", decision.state.phase, f"{state.phase} → {decision.state.phase}"))
        await self.services.write(ctx.obj, patch, decision.conditions, events, ctx.now)
        if decision.state.phase != state.phase:
            crash_at("replay-transition", ctx.namespace, f"{ctx.name} {state.phase}->{decision.state.phase}")
        intent("replayrun", ctx.namespace, ctx.name, {decision.state.phase} - {state.phase})  # a new phase
        progress.track(self.services.lag, ctx, decision.state.phase)


def _aborting_kept(obj: dict[str, Any], state: replay.ReplayState) -> bool:
    """An abort of a failure kept for inspection is acted on although the run has ended."""
    return (
        state.phase == "Failed"
        and state.reason in replay.KEPT_FOR_INSPECTION
        and bool((obj["metadata"].get("annotations") or {}).get(ABORT))
    )


def _requests(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    """Approve and abort hold while their annotation is there (an early approve counts at the approval); a
    rollback is a one-off request, acted on only when new. Every id seen is echoed into status."""
    annotations = ctx.obj["metadata"].get("annotations") or {}
    approve, abort = annotations.get(APPROVE), annotations.get(ABORT)
    rollback = requested(ctx.obj, ROLLBACK, "rollback")
    before = ctx.status.handled_requests or HandledRequests()
    asked = {"approve": approve, "abort": abort, "rollback": rollback}
    handled = before.model_copy(update={key: value for key, value in asked.items() if value})
    recorded = {"handledRequests": handled.wire()} if handled != before else {}
    seen = {"approve": bool(approve), "abort": bool(abort), "rollback": rollback is not None}
    return seen, recorded
