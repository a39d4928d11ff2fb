"""`kubectl kappa approve|abort|rollback`: set the request annotation with a new id, then wait until the
operator echoes that id in status.handledRequests, and say whether it acted on it.

The operator echoes every request id it has seen, in the same status write as the phase it decided, so the
status that carries the echo also tells whether the request was acted on (an abort after the cutover, a
rollback outside the window: echoed, and nothing happens)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from kappa.adapters.cli_cluster import Cluster, kind_of
from kappa.api.base import CommonStatus
from kappa.api.conditions import condition
from kappa.api.replayrun import ReplayRunStatus
from kappa.api.streamjob_status import StreamJobStatus
from kappa.cli import codes
from kappa.machines.replay import FINAL, KEPT_FOR_INSPECTION

ANNOTATIONS = {"approve": "kappa.dev/approve", "abort": "kappa.dev/abort", "rollback": "kappa.dev/rollback"}
CUT_OVER = frozenset({"CuttingOver", "Observing", "Succeeded"})


def new_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def verdict(verb: str, kind: str, obj: dict[str, Any]) -> tuple[bool, str]:
    """Whether the operator acted on a handled request, read from the status that echoed it."""
    if kind == "StreamJob":  # only rollback applies
        job = StreamJobStatus.of(obj)
        step = job.upgrade.step if job.upgrade else None
        if step in ("RollingBack", "RolledBack"):
            return True, f"rolling back: upgrade step {step}, active version {job.active_version}"
        cond = condition(job.conditions, "RolledBack")
        why = (cond.message if cond else "") or f"no upgrade to roll back (upgrade step {step or 'none'})"
        return False, f"rollback refused: {why}"
    st = ReplayRunStatus.of(obj)
    phase, reason = st.phase, st.reason
    if verb == "approve":
        if phase in ("Failed", "Aborted", "RolledBack"):
            return False, f"nothing to approve: the run is {phase} ({reason})"
        if phase in CUT_OVER:
            return True, f"approved: the run is {phase}"
        return True, f"approved ahead: the run is {phase}; it cuts over once it has caught up and validated"
    if verb == "abort":
        if phase == "Aborted":
            return (
                True,
                f"aborted: what the run created is removed (cleanup {st.cleanup or 'Pending'})",
            )
        return False, (
            f"abort refused: the run is {phase}; an abort acts before the cutover (after it: rollback)"
        )
    if phase == "RolledBack":
        return True, f"rolled back: the view serves {st.cutover.from_version if st.cutover else None} again"
    return False, f"rollback refused: the run is {phase}; a rollback acts in Observing (the rollback window)"


def refused_up_front(verb: str, kind: str, obj: dict[str, Any]) -> str | None:
    """A ReplayRun in an end state is not reconciled any more, so nothing would echo the request, but for
    the abort of a failed run whose output was kept for inspection (it removes them)."""
    if kind != "ReplayRun":
        return None
    st = ReplayRunStatus.of(obj)
    phase, reason = st.phase, st.reason
    if phase not in FINAL:
        return None
    if verb == "abort" and phase == "Failed" and reason in KEPT_FOR_INSPECTION:
        return None
    return f"{verb} refused: the run has ended ({phase}, {reason}); the operator acts on no request any more"


def request(
    cluster: Cluster,
    verb: str,
    kind_spelling: str,
    name: str,
    *,
    request_id: str | None = None,
    timeout: float = 60.0,
    wait: bool = True,
    interval: float = 0.5,
) -> int:
    kind, _ = kind_of(kind_spelling)
    if kind == "MaterializedView" or (kind == "StreamJob" and verb != "rollback"):
        print(f"kappa {verb}: not for a {kind}", flush=True)
        return codes.USAGE
    where = f"{kind} {cluster.namespace}/{name}"
    refusal = refused_up_front(verb, kind, cluster.must_get(kind, name))
    if refusal:
        print(f"{where}: {refusal}; nothing was set", flush=True)
        return codes.REFUSED
    annotation, key = ANNOTATIONS[verb], verb
    rid = request_id or new_id()
    cluster.annotate(kind, name, {annotation: rid})
    if not wait:
        print(f"{where}: {annotation}={rid}; see status.handledRequests.{key}", flush=True)
        return codes.OK
    print(f"{where}: {annotation}={rid}; waiting for the operator...", flush=True)
    deadline = time.monotonic() + timeout
    while True:
        obj = cluster.must_get(kind, name)
        handled = CommonStatus.of(obj).handled_requests
        if handled is not None and getattr(handled, key) == rid:
            acted, message = verdict(verb, kind, obj)
            print(f"{where}: {message}", flush=True)
            return codes.OK if acted else codes.REFUSED
        if time.monotonic() > deadline:
            print(
                f"{where}: timed out after {timeout:g}s: the operator has not echoed {rid} in "
                f"status.handledRequests.{key} (is it running? `kubectl kappa status {kind.lower()} {name}`)",
                flush=True,
            )
            return codes.TIMEOUT
        time.sleep(interval)
