"""Which versions a MaterializedView knows and what each is to it: the list in status.versions (Active,
Previous, Building, Retired, oldest first), the version a table or topic is, and the version a ReplayRun
switched the view to. Pure reads of the view's, its StreamJob's and the runs' typed status."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from kappa.api.materializedview import MaterializedViewStatus, ViewVersion
from kappa.api.replayrun import ReplayRunStatus
from kappa.api.streamjob_status import StreamJobStatus
from kappa.machines import replay


@dataclass(frozen=True)
class RunSeen:
    """A ReplayRun of the view's job as the view reads it: its spec as written, its status typed."""

    spec: dict[str, Any]
    status: ReplayRunStatus

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Self:
        return cls(obj.get("spec") or {}, ReplayRunStatus.of(obj))

    @property
    def version(self) -> Any:
        """spec.version, as written (None when missing)."""
        return self.spec.get("version")

    @property
    def phase(self) -> str:
        return self.status.phase or "Pending"


def explains(run: RunSeen) -> str | None:
    """The version a run switched the view to (or back to, after a rollback)."""
    cut = run.status.cutover
    if cut is None:
        return None
    if run.status.phase in ("CuttingOver", "Observing", "Succeeded"):
        return cut.to_version
    if run.status.phase == "RolledBack":
        return cut.from_version
    return None


def known_versions(
    status: MaterializedViewStatus, job: StreamJobStatus | None, runs: list[RunSeen], pin: str | None
) -> list[str]:
    """Every version the view may serve, oldest first."""
    seen: list[str] = []
    job = job or StreamJobStatus()
    sources = [
        *(v.name for v in status.versions),
        *(h.version for h in job.history),
        *(d.version for d in job.deployments),
        job.active_version,
        *(r.version for r in runs),
        pin,
    ]
    for version in sources:
        if version and version not in seen:
            seen.append(str(version))
    return seen


def version_of(
    physical_now: str | None, known: list[str], physical: Callable[[str | None], str | None]
) -> str | None:
    if physical_now is None:
        return None
    for version in known:
        if physical(version) == physical_now:
            return version
    return f"({physical_now})"


def version_entries(
    status: MaterializedViewStatus,
    known: list[str],
    physical: Callable[[str | None], str | None],
    active: str | None,
    previous: str | None,
    runs: list[RunSeen],
    retain: int,
    now: datetime,
) -> list[ViewVersion]:
    old = {v.name: v for v in status.versions}
    building = {r.version for r in runs if r.phase in replay.BEFORE_CUTOVER}
    stamp = now.astimezone(UTC).replace(microsecond=0)  # written as controllers/status.ts writes it
    entries = []
    for version in known:
        if version == active:
            state = "Active"
        elif version == previous:
            state = "Previous"
        elif version in building:
            state = "Building"
        else:
            state = "Retired"
        before = old.get(version)
        created = before.created if before is not None and before.created else stamp
        entries.append(
            ViewVersion(name=version, physical=physical(version) or "", created=created, state=state)
        )
    keep = [e for e in entries if e.state != "Retired"]
    retired = [e for e in entries if e.state == "Retired"]
    # retainVersions counts the active one; building versions are listed besides.
    room = max(retain - len([e for e in keep if e.state in ("Active", "Previous")]), 0)
    return (keep + retired[-room:] if room else keep)[-32:]
