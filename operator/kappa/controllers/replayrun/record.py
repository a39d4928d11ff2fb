"""What one pass of a ReplayRun writes to its status, once: the decided phase and deadline, the intent of
its actions (the cutover about to be made, a cleanup pending), what the observers measured, the transitions
list; and the metrics exported from the same facts."""

from __future__ import annotations

from typing import Any

from kappa.adapters import metrics
from kappa.api.replayrun import CheckResult, Progress, ReplayOutput, ReplayRunStatus, Transition
from kappa.controllers.replayrun.context import Context, Seen
from kappa.controllers.replayrun.cutover import cutover_record
from kappa.controllers.status import ts
from kappa.machines import replay, replay_phases
from kappa.machines.preflight import Check
from kappa.render.replay import output_table, output_topic

CLEANUPS = (replay.RemoveReplay, replay.DecommissionPrevious, replay.StopReplay)
TRANSITIONS_KEPT = 64


def _check(c: Check) -> dict[str, Any]:
    return CheckResult(name=c.name, passed=c.passed, reason=c.reason, message=c.message[:2048]).wire()


def record(ctx: Context, decision: replay.ReplayDecision, seen: Seen) -> dict[str, Any]:
    """The decided state, the intent of its actions and what was observed: the pass's status patch."""
    nxt, status = decision.state, ctx.status
    before = status.phase or "Pending"
    output = ReplayOutput(topic=output_topic(ctx.job, ctx.run), table=output_table(ctx.job, ctx.run))
    patch: dict[str, Any] = {"view": ctx.view_name, **seen.recorded}
    patch |= {
        "phase": nxt.phase,
        "reason": nxt.reason,
        "enteredAt": ts(nxt.entered_at),
        "phaseDeadline": ts(nxt.deadline),
        "caughtUpSince": ts(nxt.caught_up_since),
        "consumerGroup": ctx.group,
        "deployment": ctx.deployment,
        "output": output.given(),
    }
    if nxt.phase != before:
        transitions = [*status.transitions, Transition(phase=nxt.phase, at=ts(ctx.now), reason=nxt.reason)]
        patch["transitions"] = [t.given() for t in transitions[-TRANSITIONS_KEPT:]]
        metrics.replay_transitions.labels(ctx.namespace, ctx.name, nxt.phase).inc()
        if nxt.phase == "Failed":
            metrics.replay_failures.labels(ctx.namespace, ctx.name, nxt.reason or "").inc()
    if seen.machine.preflight is not None:
        patch["preflight"] = [_check(c) for c in seen.machine.preflight]
    if seen.machine.validation is not None:
        patch["validation"] = [_check(c) for c in seen.machine.validation]
    cutover = cutover_record(ctx, nxt, before)
    if cutover is not None:
        patch["cutover"] = cutover
    switch_back = nxt.phase == "RolledBack" and before != "RolledBack"
    if switch_back:
        metrics.rollbacks.labels(ctx.namespace, ctx.job_name).inc()
    if switch_back or any(isinstance(a, CLEANUPS) for a in decision.actions):
        patch["cleanup"] = "Pending"
    return patch


def export(ctx: Context, written: ReplayRunStatus) -> None:
    """The run's phase, progress, rate and deadline as metrics, from the status patch the pass wrote."""
    for p in replay_phases.PHASES:
        metrics.replay_phase.labels(ctx.namespace, ctx.name, p).set(1 if p == written.phase else 0)
    progress = written.progress or Progress()
    if progress.target:
        metrics.replay_progress.labels(ctx.namespace, ctx.name).set(
            (progress.consumed or 0) / progress.target
        )
    if progress.records_per_second is not None:
        metrics.replay_rate.labels(ctx.namespace, ctx.name).set(progress.records_per_second)
    metrics.set_replay_progress(ctx.namespace, ctx.name, progress.wire())
    metrics.set_timestamp(metrics.replay_phase_deadline, ctx.namespace, ctx.name, written.phase_deadline)
