"""Failpoints for crash tests: the operator dies (no cleanup, as under SIGKILL) at a named point of a
transition. Unset in production; tests set KAPPA_FAILPOINTS on the operator they run, a comma-separated list
of `point[#hit][@namespace]`: `#2` dies at the point's second hit (default: the first), `@ns` only for
objects in namespace ns. KAPPA_FAILPOINTS_FILE names a file read at every point, for more of them: a test
arms a running operator by writing it, instead of restarting the operator to arm it.

The machines' transitions have their points from one hook per controller write (`intent`, `acted`):
- `KIND:TRANSITION`, right after the status write that records a transition (its intent) and before any
  side effect. TRANSITION names the transition's event (`streamjob:UpgradeStarted`, `streamjob:RollingBack`,
  `streamjob:CanaryPromoted`...) or, for a ReplayRun, the phase it enters (`replayrun:CuttingOver`);
- `KIND:TRANSITION:N`, right after that transition's N-th side effect (an apply, a delete, a switch) and
  before the next status write.
Other points are named where they are: `replay-transition` (at every new phase of a ReplayRun),
`streamjob:Retire`, `streamjob:FinalSavepoint`, `view:Switch` (and their `:1`, after the side effect).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)
EXIT_CODE = 86

_hits: dict[str, int] = {}
_intents: dict[tuple[str, str, str], list[str]] = {}
_done: dict[tuple[str, str, str], int] = {}


def _armed() -> str:
    points = os.environ.get("KAPPA_FAILPOINTS") or ""
    path = os.environ.get("KAPPA_FAILPOINTS_FILE")
    if path:
        with contextlib.suppress(OSError):
            points = f"{points},{Path(path).read_text().strip()}"
    return points.strip(",")


def crash_at(point: str, namespace: str, detail: str) -> None:
    for entry in _armed().split(","):
        named, _, scope = entry.strip().partition("@")
        name, _, nth = named.partition("#")
        if name != point or scope not in ("", namespace):
            continue
        _hits[entry] = _hits.get(entry, 0) + 1
        if _hits[entry] == int(nth or 1):
            log.warning("failpoint %s hit at %s/%s: exiting now", entry, namespace, detail)
            logging.shutdown()
            os._exit(EXIT_CODE)


def intent(kind: str, namespace: str, name: str, transitions: Iterable[str]) -> None:
    """After a status write: the transitions it recorded (its events' reasons, or a phase entered). Their side
    effects that follow are counted by `acted`."""
    if not _armed():
        return
    key = (kind, namespace, name)
    _intents[key], _done[key] = list(transitions), 0
    for transition in _intents[key]:
        crash_at(f"{kind}:{transition}", namespace, name)


def acted(kind: str, namespace: str, name: str) -> None:
    """After one side effect of the transitions the last status write recorded."""
    if not _armed():
        return
    key = (kind, namespace, name)
    _done[key] = _done.get(key, 0) + 1
    for transition in _intents.get(key, []):
        crash_at(f"{kind}:{transition}:{_done[key]}", namespace, name)
