"""StreamJobs in Kopf: the handlers (resume, delete) and the schedule of looks. Level-triggered: a new
generation (a create or a spec change), watch events of its children and runs (controllers/watches.py), the
start (resume), and a schedule that looks again soon while something moves and rarely at rest (controllers/
schedule.py). One look is reconcile.py; deletion is finalize.py."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import kopf

from kappa.adapters import metrics
from kappa.adapters.kube import Kube
from kappa.api.base import GROUP, VERSION
from kappa.api.streamjob_status import StreamJobStatus
from kappa.controllers import looks
from kappa.controllers.schedule import Schedule
from kappa.controllers.streamjob.finalize import FINALIZE_LOOKS, finalize
from kappa.controllers.streamjob.observe import INTERVAL
from kappa.controllers.streamjob.reconcile import GONE, RESYNC, StreamJobReconciler

LAG_REFRESH = float(os.environ.get("KAPPA_LAG_REFRESH", "60"))
"""A job whose lag moved is looked at (its Lag column written) at most this often."""
LOOK_WORKERS = int(os.environ.get("KAPPA_LOOK_WORKERS", "16"))
"""StreamJobs looked at concurrently by the schedule: every look, a create's and a spec change's too."""
RESUME_AT_REST = 3.0
"""At start, jobs at rest are looked at this much later than the moving ones, so those go first."""
STOP_WITHIN = 2.0
LOG = logging.getLogger("kappa.streamjob")


def _reconciler(memo: kopf.Memo) -> StreamJobReconciler:
    if not hasattr(memo, "streamjobs"):
        memo.streamjobs = StreamJobReconciler(Kube(), memo.lag)
        memo.streamjob_locks = {}
    return memo.streamjobs  # type: ignore[no-any-return]


@kopf.on.startup()
async def share_streamjob_reconciler(memo: kopf.Memo, **indexes: Any) -> None:
    """Built on the operator's memo before any handler runs. Kopf gives each object a shallow copy of that
    memo: built there, one reconciler (one API client, one lock table, one schedule) serves every StreamJob;
    built from a handler, it would live in that object's copy, one client per object. It reads the job's
    deployments and runs from the watch-fed indexes (controllers/watches.py)."""
    deployments: kopf.Index[Hashable, Any] = indexes["flinkdeployments_by_job"]
    runs: kopf.Index[Hashable, Any] = indexes["replayruns_by_job"]
    reconciler = StreamJobReconciler(Kube(), memo.lag, deployments, runs)
    memo.streamjobs = reconciler
    memo.streamjob_locks = {}
    memo.streamjob_schedule = reconciler.schedule
    memo.streamjob_annotations = {}
    memo.streamjob_generations = {}
    memo.streamjob_known = reconciler.known
    memo.deployment_facts = {}
    memo.streamjobs_resting = set()
    memo.lag.on_change = _lag_moved(reconciler.schedule)
    metrics.watch_schedule("StreamJob", reconciler.schedule)
    scheduled = functools.partial(looks.scheduled, "StreamJob", functools.partial(_locked, memo), INTERVAL)
    memo.streamjob_looks = asyncio.create_task(
        reconciler.schedule.run(scheduled, LOOK_WORKERS), name="kappa-streamjob-looks"
    )


@kopf.on.cleanup()
async def stop_streamjob_looks(memo: kopf.Memo, **_: Any) -> None:
    """Looks under way are cancelled: what they wrote is written, and the next start looks at all again."""
    task: asyncio.Task[None] | None = getattr(memo, "streamjob_looks", None)
    if task is not None:
        task.cancel()
        await asyncio.wait([task], timeout=STOP_WITHIN)


def _lag_moved(schedule: Schedule) -> Callable[[str, str, bool], None]:
    """The lag poll saw a job's lag move (a new Lag column) or its verdict or Kafka's reachability change."""

    def moved(namespace: str, job: str, urgent: bool) -> None:
        if urgent:
            schedule.wake((namespace, job))
        else:
            schedule.nudge((namespace, job), LAG_REFRESH)

    return moved


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> float:
    """One reconcile at a time per StreamJob: a look and the deletion must not interleave. Each look says
    when the next is due (machines/cadence.py); a failed one asks again after INTERVAL."""
    reconciler = _reconciler(memo)
    following = INTERVAL
    try:
        found = await looks.look_locked(
            memo.streamjob_locks,
            "StreamJob",
            namespace,
            name,
            lambda ns, n: reconciler.reconcile(ns, n, LOG),
        )
        following = RESYNC if found is None else found
    finally:
        if following == GONE:  # deleted, or being deleted: finalize_streamjob is on it
            reconciler.schedule.forget((namespace, name))
        else:
            reconciler.schedule.after((namespace, name), following)
        # At rest (nothing moving: the next look is the resync or a retirement), a periodic checkpoint of
        # its deployment does not wake it (controllers/watches.py).
        resting: set[tuple[str, str]] = memo.streamjobs_resting
        (resting.add if INTERVAL < following != GONE else resting.discard)((namespace, name))
    return following


@kopf.on.resume(GROUP, VERSION, "streamjobs")
async def resume_streamjob(meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """At start every StreamJob is looked at once, through the schedule, in order of urgency: a job in the
    middle of something (an upgrade, a rollback, a canary, a replay, not ready) before the jobs at rest."""
    delay = resume_delay(status, int(meta.get("generation") or 0))
    _reconciler(memo).schedule.after((str(meta["namespace"]), str(meta["name"])), delay)


def resume_delay(status: Mapping[str, Any], generation: int = 0) -> float:
    """Seconds from start to the first look: none for a job that is moving or whose spec changed while the
    operator was down, a little for one at rest."""
    typed = StreamJobStatus.model_validate(dict(status))
    if generation and typed.observed_generation != generation:
        return 0.0
    ready = any(c.type == "Ready" and c.status == "True" for c in typed.conditions)
    step = typed.upgrade.step if typed.upgrade else "Idle"
    resting = typed.phase in ("Running", "Suspended") and step in ("Idle", "RolledBack")
    canary = typed.canary is not None and typed.canary.step in ("Deploying", "Analysing", "Promoting")
    return RESUME_AT_REST if ready and resting and not canary else 0.0


@kopf.on.delete(GROUP, VERSION, "streamjobs")
async def finalize_streamjob(meta: kopf.Meta, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Deletion takes a final savepoint of the active version and records it; then the finalizer goes and the
    garbage collector removes the deployments. Outputs stay unless spec.output.deletionPolicy is Delete."""
    namespace, name = str(meta["namespace"]), str(meta["name"])
    reconciler = _reconciler(memo)
    # Looks every 2 s, but hands back to Kopf (which logs each retry as an error) once a minute only.
    for _look in range(FINALIZE_LOOKS):
        async with memo.streamjob_locks.setdefault((namespace, name), asyncio.Lock()):
            if await finalize(reconciler.kube, reconciler.runtimes, reconciler.lag, namespace, name):
                # Its groups (a version that never became active too) leave the lag poll, and their series.
                reconciler.lag.retain(namespace, name, set())
                metrics.forget_streamjob(namespace, name)
                reconciler.schedule.forget((namespace, name))
                memo.streamjob_annotations.pop((namespace, name), None)
                reconciler.known.forget((namespace, name))
                looks.forget("StreamJob", namespace, name)
                return
        await asyncio.sleep(2)
    raise kopf.TemporaryError("waiting for the final savepoint", delay=2)
