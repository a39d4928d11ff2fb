"""When a StreamJob is looked at again, if no watch event comes first (controllers/schedule.py).

Watch events cover what the cluster shows: the StreamJob's own changes, its FlinkDeployments' status, its
ReplayRuns. What no event shows is time and the outside world: an upgrade step's deadline or `stableFor`, a
retirement's `retireAt`, a savepoint disposal FKO carries out, a KafkaTopic becoming ready, Kafka and a
session cluster over REST. So a job is looked at every `interval` while any of those is in play, as it was
by the timer (sooner when the upgrade machine asks: `requeue_after`), and only every `resync` at rest: a
running job with nothing moving, which is most jobs most of the time, and what made the fixed timer cost
four API calls per job per interval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Moving:
    """What the last look saw that a later one must follow up without an event."""

    watched_runtime: bool = True
    """The runtime's objects are watched (FlinkDeployments); False for a session cluster, seen over REST."""
    step: str = "Idle"
    requeue_after: float | None = None
    """What the upgrade machine asked for (a deadline, a stability window)."""
    ready: bool = True
    canary: bool = False
    replaying: bool = False
    acting: bool = False
    """Children were applied or deleted in this look."""
    disposing: bool = False
    kafka_down: bool = False


def next_look(
    moving: Moving, retire_at: Iterable[datetime], now: datetime, *, interval: float, resync: float
) -> float:
    """Seconds until the next look."""
    busy = (
        not moving.watched_runtime
        or moving.step != "Idle"
        or moving.requeue_after is not None
        or not moving.ready
        or moving.canary
        or moving.replaying
        or moving.acting
        or moving.disposing
        or moving.kafka_down
    )
    if busy:
        # The machine's own ask (a stability window of a few seconds) comes first; never less than a second.
        asked = moving.requeue_after
        return interval if asked is None else max(1.0, min(interval, asked))
    soonest = min(((at - now).total_seconds() for at in retire_at), default=resync)
    # A retirement that is due and still there (held by a rollback window) is followed at the interval.
    return min(resync, soonest if soonest > 0 else interval)
