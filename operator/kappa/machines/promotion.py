"""Which version of a StreamJob is live after ReplayRuns: a run's cutover makes its version live, and its
rollback makes the replaced version live again, while spec.version still names one of the two. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kappa.api.streamjob_status import PromotionRecord

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
    record: PromotionRecord | None
    """status.promotion to keep: it outlives the ReplayRun."""


def live_version(spec_version: str, recorded: PromotionRecord | None, runs: list[RunSeen]) -> Live:
    done = [r for r in runs if r.cut_over_at and (r.phase in CUT_OVER or r.phase == "RolledBack")]
    record = recorded
    if done:
        latest = max(done, key=lambda r: r.cut_over_at or datetime.min)
        record = PromotionRecord(
            run=latest.name,
            version=str(latest.to_version),
            from_version=latest.from_version,
            rolled_back=latest.phase == "RolledBack",
            retire_at=latest.retire_at,
        )
    if not record or spec_version not in (record.version, record.from_version):
        return Live(spec_version, False, record)
    live = record.from_version if record.rolled_back else record.version
    return Live(str(live or spec_version), True, record)
