"""A replay's progress and catch-up: the replay deployment as FKO reports it, records consumed against the
target offsets (rate, ETA), the lag of the replay's consumer group (against the target, then the live head),
partitions that fell off retention, and the lag monitor's tracking of the group while it catches up."""

from __future__ import annotations

from typing import Any

from kappa.adapters.job_runtime.seam import JobRuntime
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.api.replayrun import Lag, PartitionLag, Progress, ReplayRunStatus
from kappa.controllers.lag import LagTracking
from kappa.controllers.replayrun.context import Context, offsets_of
from kappa.machines.fko import deployment_view
from kappa.machines.preflight import fell_off_retention
from kappa.machines.runtime_facts import Deployment

TRACKED = ("Replaying", "CatchingUp", "Validating", "AwaitingApproval")
"""Phases in which the lag monitor follows the replay's consumer group."""


def _eta(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


async def replay_deployment(runtime: JobRuntime, ctx: Context) -> Deployment:
    fd = await runtime.get(ctx.namespace, ctx.deployment)
    return deployment_view(fd) if fd else Deployment(exists=False)


def _progress(ctx: Context, status: ReplayRunStatus, consumed: int, total: int) -> Progress:
    """status.progress. The achieved rate is since the replay began: reads under a broker quota come in lumps,
    so a rate between two reconciles would swing between zero and a burst."""
    began = next((t.at for t in status.transitions if t.phase == "Replaying"), None)
    elapsed = (ctx.now - began).total_seconds() if began else 0.0
    rate = consumed / elapsed if elapsed >= 1 else None
    remaining = max(total - consumed, 0)
    eta = remaining / rate if rate else None
    return Progress(
        consumed=consumed,
        target=total,
        percent=f"{min(100, int(100 * consumed / total)) if total else 100}%",
        records_per_second=round(rate, 1) if rate is not None else None,
        eta=_eta(eta) if remaining else "0s",
    )


async def observe_progress(
    lag: LagTracking, ctx: Context, admin: KafkaAdmin
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the machine reads: target reached, partitions fallen off; status.progress and status.lag)."""
    status = ctx.status
    start = offsets_of(status.start_offsets)
    target = offsets_of(status.target_offsets)
    committed = await admin.committed(ctx.group)
    position = {p: max(committed.get(p, o), o) for p, o in start.items()}
    consumed = sum(position[p] - start[p] for p in start)
    total = sum(max(target.get(p, o) - o, 0) for p, o in start.items())
    reached = all(position[p] >= target.get(p, o) for p, o in start.items()) and bool(start)
    behind = {p: max(target.get(p, 0) - position[p], 0) for p in start}
    found = lag.latest(ctx.group)
    if found is not None:  # once caught up to the old head, lag is against the live head
        behind = {p: found.lag_of(*p) for p in start}
    lag_status = Lag(
        total=sum(behind.values()),
        evaluation=found.status.status.name if found else None,
        partitions=[PartitionLag(topic=t, partition=n, lag=v) for (t, n), v in sorted(behind.items())],
    )
    recorded = {"progress": _progress(ctx, status, consumed, total).given(), "lag": lag_status.given()}
    log_starts = await admin.log_start_offsets(list(start))
    fell = fell_off_retention({p: committed.get(p) for p in start}, log_starts)
    seen = {
        "reached_target": reached,
        "fell_off": tuple(f"{t}[{n}] at {c} < log start {s}" for (t, n), c, s in fell),
    }
    return seen, recorded


def catch_up_lag(lag: LagTracking, ctx: Context) -> dict[str, Any]:
    """While catching up: the largest partition lag and the lag monitor's evaluation, once it has one."""
    found = lag.latest(ctx.group)
    if found is None:
        return {}
    lags = [found.lag_of(t, p) for (t, p) in offsets_of(ctx.status.start_offsets)]
    return {"max_partition_lag": max(lags, default=0), "lag_status": found.status.status}


def track(lag: LagTracking, ctx: Context, phase: str) -> None:
    if phase in TRACKED:
        labels = {"namespace": ctx.namespace, "job": ctx.job_name, "version": ctx.run.version}
        lag.track(ctx.connection, ctx.group, list(ctx.job.source.topics), labels)
