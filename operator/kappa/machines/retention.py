"""What may go so that nothing piles up: savepoints beyond the bounded history, and the outputs (tables or
topics) of retired versions beyond a view's retainVersions. Pure decisions; the controllers record the intent
in status, then dispose or remove through the runtime or the backend.

Savepoints (StreamJob status.savepoints, oldest first): the history keeps the newest `keep` entries; older
ones are disposed of before they are forgotten, except a protected one, which stays whatever the bound:
- the one status.upgrade.savepoint points at (an upgrade, a suspension or a rollback starts from it);
- every Final one (taken at deletion: the state a re-created StreamJob would start from);
- the newest one of each version that still has a deployment (running, or suspended for rollback within
  its window: FKO resumes it from there) and of the upgrade's previous version;
- the newest one overall, and any path something else still names (a ReplayRun's rollback savepoint).
An entry whose disposal was decided says so in its reason (DISPOSING) until the runtime has done it; then it
is forgotten. The list never exceeds MAX_SAVEPOINTS (the CRD's maxItems): should disposals pile up (the
runtime cannot dispose), the oldest decided ones are forgotten undisposed, and said so.

Outputs (a view's versions, oldest first): with deletionPolicy Delete only, the output of a retired version
beyond retainVersions goes once its rollback window is over (counted from when it was superseded). Never the
output of a protected version (active, previous, building, pinned, deployed, named by a run still going) nor
one the view reads. Lineage: a savepoint-upgraded version writes its predecessor's output, so an output goes
only when every version writing it may go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kappa.api.streamjob_status import SavepointRecord, VersionHistoryEntry

DISPOSING = "Disposing"
MAX_SAVEPOINTS = 32  # status.savepoints maxItems
DEFAULT_SAVEPOINT_HISTORY = 24  # leaves room for protected entries and disposals under way


@dataclass(frozen=True)
class SavepointPlan:
    kept: list[SavepointRecord]
    """status.savepoints as it is to be written, entries to dispose of marked DISPOSING."""
    dispose: list[SavepointRecord]
    """Entries (as in `kept`) whose disposal is decided: newly, or earlier and not done yet."""
    forgotten: list[SavepointRecord]
    """Entries dropped undisposed because the list would exceed MAX_SAVEPOINTS."""


def protected_savepoints(
    entries: Sequence[SavepointRecord],
    *,
    upgrade_savepoint: str | None,
    deployed: Iterable[str],
    previous: str | None = None,
    named: Iterable[str] = (),
) -> set[str]:
    """The paths that a rollback, a resumption or a running version may still need."""
    protected = {p for p in (upgrade_savepoint, *named) if p}
    newest: dict[str, str] = {}
    for entry in entries:
        newest[entry.version] = entry.path
        if entry.reason == "Final":
            protected.add(entry.path)
    for version in {*deployed, previous}:
        if version and version in newest:
            protected.add(newest[version])
    if entries:
        protected.add(entries[-1].path)
    return protected


def plan_savepoints(entries: Sequence[SavepointRecord], *, keep: int, protected: set[str]) -> SavepointPlan:
    """Mark the oldest unprotected entries beyond the newest `keep` for disposal."""
    kept = list(entries)
    live = [i for i, e in enumerate(kept) if e.reason != DISPOSING or e.path in protected]
    excess = len(live) - max(keep, 1)
    for i in live:
        if excess <= 0:
            break
        if kept[i].path in protected:
            continue
        kept[i] = kept[i].model_copy(update={"reason": DISPOSING})
        excess -= 1
    forgotten: list[SavepointRecord] = []
    while len(kept) > MAX_SAVEPOINTS:
        # Decided disposals first, then the oldest unprotected entry: never more than the CRD admits.
        order = sorted(
            range(len(kept)),
            key=lambda i: (kept[i].path in protected, kept[i].reason != DISPOSING, i),
        )
        forgotten.append(kept.pop(order[0]))
    dispose = [e for e in kept if e.reason == DISPOSING and e.path not in protected]
    return SavepointPlan(kept, dispose, forgotten)


@dataclass(frozen=True)
class OutputVersion:
    version: str
    physical: str | None
    """The table or topic the version writes (its lineage's); None when there is none."""
    state: str
    """As the view lists it: Active, Previous, Building or Retired."""
    superseded_at: datetime | None = None
    """When it last stopped being the StreamJob's active version; None if it never was."""


@dataclass(frozen=True)
class Removal:
    physical: str
    versions: tuple[str, ...]


def removable_outputs(
    versions: Sequence[OutputVersion],
    *,
    retain: int,
    deletion_policy: str,
    window: timedelta,
    now: datetime,
    protected: Iterable[str] = (),
    reads: Iterable[str | None] = (),
) -> list[Removal]:
    """The outputs that may be removed now, oldest first. `protected`: versions whose output must stay
    (active, previous, deployed, named by a run...); `reads`: what the view reads now."""
    if deletion_policy != "Delete":
        return []
    guarded = set(protected)
    kept = [v for v in versions if v.state != "Retired"]
    retired = [v for v in versions if v.state == "Retired"]
    # retainVersions counts the active one, as the view's status lists them.
    room = max(retain - len([v for v in kept if v.state in ("Active", "Previous")]), 0)
    beyond = retired[: len(retired) - room] if room else retired
    candidates = {
        v.version
        for v in beyond
        if v.version not in guarded and v.superseded_at is not None and now >= v.superseded_at + window
    }
    needed = {v.physical for v in versions if v.version not in candidates} | {p for p in reads if p}
    out: list[Removal] = []
    seen: set[str] = set()
    for v in versions:
        if v.physical is None or v.physical in seen or v.physical in needed:
            continue
        seen.add(v.physical)
        out.append(Removal(v.physical, tuple(w.version for w in versions if w.physical == v.physical)))
    return out


def superseded_times(history: Iterable[VersionHistoryEntry]) -> dict[str, datetime]:
    """When each version last stopped being active, from a StreamJob's status.history."""
    return {entry.version: entry.at for entry in history if entry.outcome == "Superseded"}
