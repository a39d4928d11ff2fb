"""/healthz (Kopf's liveness endpoint) fails when a background loop the operator depends on has stopped.

Kopf answers /healthz from its probe handlers; a handler that raises makes it answer 500, and Kubernetes
restarts the pod after its liveness probe's failureThreshold. Without this, an operator whose lag poll died
would keep answering 200 while no StreamJob ever got a lag reading again. A dead process shows by its exit
code (testbed/supervise.sh says it, a Deployment restarts it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

_LOOPS = (("lag_task", "the lag poll"), ("view_resync", "the MaterializedView resync"))
"""The memo's background tasks (controllers/lag.py, controllers/materializedview/__init__.py)."""


def _why(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return f"{type(error).__name__}: {error}" if error is not None else "returned"


@kopf.on.probe(id="background_loops", errors=kopf.ErrorsMode.PERMANENT)
async def background_loops(memo: kopf.Memo, **_: Any) -> str:
    problems = []
    for attribute, what in _LOOPS:
        task: asyncio.Task[Any] | None = getattr(memo, attribute, None)
        if task is not None and task.done():
            problems.append(f"{what} ended ({_why(task)})")
    tracking = getattr(memo, "lag", None)
    if tracking is not None and (stalled := tracking.stalled()):
        problems.append(stalled)
    if problems:
        raise kopf.PermanentError("; ".join(problems))
    return "running"
