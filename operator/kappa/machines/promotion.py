"""Which version of a StreamJob is live after ReplayRuns: a run's cutover makes its version live, and its
rollback makes the replaced version live again, while spec.version still names one of the two. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

CUT_OVER = ("Observing", "Succeeded")


@dataclass(frozen=True)
class RunSeen:
    name: str
    phase: str
    from_version: str | None
    to_version: str | None
    cut_over_at: datetime | None
    retire_at: datetime | None


@dataclass(frozen=True)
class Live:
    version: str
    """The version the StreamJob should run."""
    adopt: bool
    """It comes from a replay: switch to it as deployed, not by a savepoint upgrade."""
    record: dict[str, Any] | None
    """status.promotion to keep: it outlives the ReplayRun."""


def live_version(spec_version: str, recorded: dict[str, Any] | None, runs: list[RunSeen]) -> Live:
    done = [r for r in runs if r.cut_over_at and (r.phase in CUT_OVER or r.phase == "RolledBack")]
    record = recorded
    if done:
        latest = max(done, key=lambda r: r.cut_over_at or datetime.min)
        record = {
            "run": latest.name,
            "version": latest.to_version,
            "fromVersion": latest.from_version,
            "rolledBack": latest.phase == "RolledBack",
            "retireAt": latest.retire_at.strftime("%Y-%m-%dT%H:%M:%SZ") if latest.retire_at else None,
        }
    if not record or spec_version not in (record.get("version"), record.get("fromVersion")):
        return Live(spec_version, False, record)
    live = record["fromVersion"] if record.get("rolledBack") else record["version"]
    return Live(str(live or spec_version), True, record)
