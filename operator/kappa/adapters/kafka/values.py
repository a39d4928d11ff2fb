"""What the Kafka adapter returns and raises: a `Partition` (topic, index), where a replay starts
(`StartResolution`), a consumer group's state (`GroupInfo`), what `ensure_topic` did (`TopicEnsured`), and
`KafkaAdapterError` with its kinds (`GroupInUse`, `PartitionDecreaseRefused`, `UnknownTopic`), whose messages
are fit for a condition."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Partition = tuple[str, int]


class KafkaAdapterError(Exception):
    """A Kafka operation was refused; the message is fit for a condition."""


class GroupInUse(KafkaAdapterError):
    """A replay group must be new: reusing a group is how replays silently serve wrong numbers."""


class PartitionDecreaseRefused(KafkaAdapterError):
    pass


class UnknownTopic(KafkaAdapterError):
    pass


@dataclass(frozen=True)
class StartResolution:
    """Offsets a new group starts from, per partition."""

    offsets: dict[Partition, int]
    past_end: list[Partition] = field(default_factory=list)
    """Partitions with no record at or after the requested time: they start at the end offset."""

    @property
    def message(self) -> str:
        if not self.past_end:
            return f"start resolved on {len(self.offsets)} partition(s)"
        names = ", ".join(f"{t}[{p}]" for t, p in self.past_end)
        return f"no record at or after the start time on {names}: those start at their end offset"


@dataclass(frozen=True)
class GroupInfo:
    group: str
    state: str
    members: int
    exists: bool


@dataclass(frozen=True)
class TopicEnsured:
    name: str
    created: bool
    partitions_added: int = 0
    configs_changed: tuple[str, ...] = ()


def names_of(parts: Iterable[Partition]) -> str:
    return ", ".join(f"{t}[{p}]" for t, p in parts)
