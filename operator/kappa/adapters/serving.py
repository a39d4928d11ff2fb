"""A MaterializedView's backend behind one interface: where the alias points, the atomic switch, and the
versions' physical objects (tables or topics) that the cutover and the validation gates need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kappa.adapters.alias import AliasError, Cutover
from kappa.adapters.configmap_alias import ConfigMapAlias
from kappa.adapters.kafka.admin import KafkaAdmin

if TYPE_CHECKING:
    from kappa.adapters.postgres import PostgresAlias  # psycopg: imported when a view needs it (lazy.py)


class Unsupported(AliasError):
    """The backend cannot run this kind of check (e.g. SQL against a topic)."""


class ServedView(Protocol):
    kind: str

    def describe(self) -> str: ...
    async def target(self) -> str | None: ...
    async def cutover(self, to: str, *, expected: str | None) -> Cutover: ...
    async def exists(self, physical: str) -> bool: ...
    async def prepare(self, physical: str, *, like: str | None) -> None: ...
    async def remove(self, physical: str) -> bool: ...
    async def count(self, physical: str) -> int | None: ...
    async def key_diff(
        self, active: str, new: str, *, sample: int, ignore: list[str]
    ) -> tuple[int, int, list[str]]: ...
    async def check(self, physical: str, query: str) -> tuple[bool, str]: ...


@dataclass
class PostgresView:
    """A view over one table per version. The URI comes from a Secret and is never logged."""

    alias: PostgresAlias
    schema: str
    view: str
    lock_timeout: str = "2s"
    retries: int = 5
    kind: str = "postgres"

    def describe(self) -> str:
        return f"view {self.schema}.{self.view}"

    async def target(self) -> str | None:
        return await self.alias.target(self.schema, self.view)

    async def cutover(self, to: str, *, expected: str | None) -> Cutover:
        return await self.alias.cutover(
            self.schema,
            self.view,
            to,
            expected=expected,
            lock_timeout=self.lock_timeout,
            retries=self.retries,
        )

    async def exists(self, physical: str) -> bool:
        return await self.alias.table_exists(self.schema, physical)

    async def prepare(self, physical: str, *, like: str | None) -> None:
        # A JDBC sink does not create its table: the new version's starts as an empty copy of the active one.
        if like and await self.alias.table_exists(self.schema, like):
            await self.alias.create_like(self.schema, physical, like)

    async def remove(self, physical: str) -> bool:
        return await self.alias.drop_table(self.schema, self.view, physical)

    async def count(self, physical: str) -> int | None:
        return await self.alias.count(self.schema, physical)

    async def key_diff(
        self, active: str, new: str, *, sample: int, ignore: list[str]
    ) -> tuple[int, int, list[str]]:
        return await self.alias.key_diff(self.schema, active, new, sample=sample, ignore=ignore)

    async def check(self, physical: str, query: str) -> tuple[bool, str]:
        return await self.alias.check(self.schema, physical, query)


@dataclass
class ConfigMapView:
    """A ConfigMap naming the active topic; the topics themselves live in Kafka."""

    alias: ConfigMapAlias
    namespace: str
    name: str
    key: str
    kafka: KafkaAdmin | None
    kind: str = "configMap"

    def describe(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    async def target(self) -> str | None:
        return await self.alias.target(self.namespace, self.name, self.key)

    async def cutover(self, to: str, *, expected: str | None) -> Cutover:
        return await self.alias.cutover(self.namespace, self.name, self.key, to, expected=expected)

    async def exists(self, physical: str) -> bool:
        return self.kafka is not None and await self.kafka.topic_exists(physical)

    async def prepare(self, physical: str, *, like: str | None) -> None:
        return None  # the versioned topic is the job's output: KafkaTopic or the Kafka adapter creates it

    async def remove(self, physical: str) -> bool:
        return False  # topics follow the StreamJob's deletionPolicy and their retention, not the view

    async def count(self, physical: str) -> int | None:
        if self.kafka is None or not await self.kafka.topic_exists(physical):
            return None
        parts = await self.kafka.partitions([physical])
        ends = await self.kafka.end_offsets(parts)
        starts = await self.kafka.log_start_offsets(parts)
        return sum(ends[p] - starts[p] for p in parts)

    async def key_diff(
        self, active: str, new: str, *, sample: int, ignore: list[str]
    ) -> tuple[int, int, list[str]]:
        raise Unsupported("a sampled key diff needs a table backend (postgres)")

    async def check(self, physical: str, query: str) -> tuple[bool, str]:
        raise Unsupported("SQL checks need a postgres backend")
