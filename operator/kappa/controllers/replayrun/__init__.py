"""ReplayRuns: replay a StreamJob's new version from Kafka history, catch up, validate, cut the view over,
observe through the rollback window, then decommission. Importing this package registers the Kopf handlers
(create, resume, spec or annotation change, a timer, delete). Where each concern lives:

- reconcile.py: one pass, load → observe → decide (machines/replay.py) → write once → act → metrics;
- preflight.py: the view's holder and the preflight checks; quota.py: the broker quota of a throttled replay;
- deploy.py: creating the replay (group, output, quota, deployment); progress.py: progress and catch-up lag;
- validation.py: the gates before the cutover; cutover.py: the cutover, the rollback window and switch back;
- cleanup.py: removal, stop, decommission, end states (machines/replay_cleanup.py) and deletion;
- actions.py: the action → carry-out table; record.py: the status patch and metrics; context.py: shared reads.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import kopf

from kappa.adapters import metrics
from kappa.adapters.kube import Kube
from kappa.api.base import GROUP, VERSION
from kappa.controllers.replayrun.reconcile import ReplayRunReconciler
from kappa.controllers.status import unless_terminating

INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))


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
