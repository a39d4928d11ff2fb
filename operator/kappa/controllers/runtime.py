"""Operator-wide settings: Kopf keeps its bookkeeping in status, never in annotations. And the process's
memory: what the C allocator keeps after a burst goes back to the system (adapters/memory.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import kopf

from kappa.adapters.memory import trim_periodically
from kappa.api.base import GROUP

FIELD_MANAGER = "kappa-operator"


class OwnKindsDiffBase(kopf.StatusDiffBaseStorage):
    """Kopf's diff-base in status, built only for the kinds with create and update handlers: ReplayRuns and
    MaterializedViews. Kopf builds an object's essence (a deep copy of it, less what it ignores) on every
    watch event of every kind it watches, for change detection; of the FlinkDeployments and KafkaTopics,
    which the operator only indexes and follows (controllers/watches.py), nothing ever compares it. At 1,000
    jobs, FKO's status writes at rest (33/s) spent a tenth of the event loop on those copies. StreamJobs have
    no such handlers: a new generation wakes their look from the watch (watches.py `wake_on_request`), and
    with an essence Kopf patched it into status after every create and spec change, then held that job's
    events until the patch came back. Their essence is empty: Kopf stores it once and compares equal since.
    `build` is Kopf's extension point for "a different definition of an object's essence"
    (kopf/_cogs/configs/diffbase.py; kopf/_core/reactor/processing.py stores it when it differs)."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        if str(body.get("apiVersion", "")).split("/")[0] != GROUP or body.get("kind") == "StreamJob":
            return {}
        return super().build(body=body, extra_fields=extra_fields)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # The operator never writes spec, labels or annotations of user resources: Argo CD must see no drift.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = OwnKindsDiffBase(field="status.kopf.last-handled-configuration")
    settings.persistence.finalizer = "kappa.dev/finalizer"
    # Our own events say what happened; Kopf's per-handler log lines would only repeat it as events.
    settings.posting.loggers = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 8
    # Kopf's per-object worker keeps the object's last watch event (the whole decoded body) while it waits
    # for the next one, for idle_timeout (5 s by default). In a burst (1,000 creates, a restart) nearly every
    # FlinkDeployment and StreamJob has an event that often, so nearly all their bodies were alive at once,
    # and Python's allocator keeps the memory of that peak for good (benchmarks/README.md, scale runs O-Q).
    # Half a second still batches an object's events; a worker that exits starts again at the next event.
    settings.queueing.idle_timeout = 0.5


@kopf.on.startup()
async def start_trimming(memo: kopf.Memo, **_: Any) -> None:
    """What the C allocator kept after a burst goes back to the system once a minute (adapters/memory.py)."""
    memo.trim_stop = asyncio.Event()
    memo.trim_task = asyncio.create_task(trim_periodically(memo.trim_stop), name="kappa-malloc-trim")


@kopf.on.cleanup()
async def stop_trimming(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "trim_task", None)
    if task is not None:
        memo.trim_stop.set()
        await asyncio.wait([task], timeout=5)
