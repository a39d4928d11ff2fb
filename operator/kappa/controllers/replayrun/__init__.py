"""ReplayRuns: replay a StreamJob's new version from Kafka history, catch up, validate, cut the view over,
observe through the rollback window, then decommission. Importing this package registers the Kopf handlers
(create, resume, spec or annotation change, delete) and the schedule of looks (controllers/schedule.py): each
look says when the next is due, soon while the phase asks (`requeue_after`), at most the interval apart.
Where each concern lives:

- reconcile.py: one pass, load → observe → decide (machines/replay.py) → write once → act → metrics;
- preflight.py: the view's holder and the preflight checks; quota.py: the broker quota of a throttled replay;
- deploy.py: creating the replay (group, output, quota, deployment); progress.py: progress and catch-up lag;
- validation.py: the gates before the cutover; cutover.py: the cutover, the rollback window and switch back;
- cleanup.py: removal, stop, decommission, end states (machines/replay_cleanup.py) and deletion;
- actions.py: the action → carry-out table; record.py: the status patch and metrics; context.py: shared reads.
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any

import kopf

from kappa.adapters import metrics
from kappa.adapters.kube import Kube
from kappa.api.base import GROUP, VERSION
from kappa.controllers import looks
from kappa.controllers.replayrun.reconcile import GONE, INTERVAL, ReplayRunReconciler
from kappa.controllers.schedule import Schedule

RETRY = max(INTERVAL, 5.0)
"""A look that failed (the API server away) is tried again after 5 s or the interval: a run that switched its
view while the API server was down records it as soon as it is back."""
LOOK_WORKERS = int(os.environ.get("KAPPA_LOOK_WORKERS", "8"))
"""ReplayRuns looked at concurrently by the schedule (change handlers come on top)."""
STOP_WITHIN = 2.0


def _reconciler(memo: kopf.Memo) -> ReplayRunReconciler:
    if not hasattr(memo, "replayruns"):
        memo.replayruns = ReplayRunReconciler(Kube(), memo.lag)
        memo.replayrun_locks = {}
        memo.replayrun_schedule = Schedule()
    return memo.replayruns  # type: ignore[no-any-return]


@kopf.on.startup()
async def share_replayrun_reconciler(memo: kopf.Memo, **_: Any) -> None:
    """Built on the operator's memo before any handler runs. Kopf gives each object a shallow copy of that
    memo: built there, one reconciler (one API client, one lock table, one schedule) serves every ReplayRun;
    built from a handler, it would live in that object's copy, one client per object."""
    _reconciler(memo)
    schedule: Schedule = memo.replayrun_schedule
    metrics.watch_schedule("ReplayRun", schedule)
    scheduled = functools.partial(looks.scheduled, "ReplayRun", functools.partial(_locked, memo), RETRY)
    memo.replayrun_looks = asyncio.create_task(
        schedule.run(scheduled, LOOK_WORKERS), name="kappa-replayrun-looks"
    )


@kopf.on.cleanup()
async def stop_replayrun_looks(memo: kopf.Memo, **_: Any) -> None:
    """Looks under way are cancelled: what they wrote is written, and the next start looks at all again."""
    task: asyncio.Task[None] | None = getattr(memo, "replayrun_looks", None)
    if task is not None:
        task.cancel()
        await asyncio.wait([task], timeout=STOP_WITHIN)


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> float:
    """One look at a time per run: the schedule's and the change handlers' must not interleave. The look
    puts the run on the schedule for its next one (a failed look: after RETRY)."""
    reconciler = _reconciler(memo)
    schedule: Schedule = memo.replayrun_schedule
    following = RETRY
    try:
        found = await looks.look_locked(
            memo.replayrun_locks, "ReplayRun", namespace, name, reconciler.reconcile
        )
        following = RETRY if found is None else found
    finally:
        if following == GONE:  # deleted, or being deleted: finalize_replayrun is on it
            schedule.forget((namespace, name))
        else:
            schedule.after((namespace, name), following)
    return following


@kopf.on.resume(GROUP, VERSION, "replayruns")
@kopf.on.create(GROUP, VERSION, "replayruns")
@kopf.on.update(GROUP, VERSION, "replayruns", field="spec")
@kopf.on.update(GROUP, VERSION, "replayruns", field="metadata.annotations")
async def reconcile_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """Looked at at once; the look puts the run on the schedule, which carries out the later ones."""
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.on.delete(GROUP, VERSION, "replayruns")
async def finalize_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    namespace, name = str(meta["namespace"]), str(meta["name"])
    reconciler = _reconciler(memo)
    async with memo.replayrun_locks.setdefault((namespace, name), asyncio.Lock()):
        done = await reconciler.finalize(namespace, name)
    if not done:
        raise kopf.TemporaryError("removing what the run created", delay=2)
    memo.replayrun_schedule.forget((namespace, name))
    looks.forget("ReplayRun", namespace, name)
    metrics.forget_replay(namespace, name)
