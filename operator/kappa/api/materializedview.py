"""MaterializedView: one stable name for readers, with versioned physical objects underneath."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from kappa.api.base import (
    CommonStatus,
    KappaModel,
    ObjectName,
    SqlIdentifier,
    VersionName,
    cel,
    positive_duration,
    validated,
)

LockTimeout = Annotated[
    str,
    positive_duration(
        "must be longer than 0s: PostgreSQL reads a lock_timeout of 0 as no timeout, and the cutover could "
        "then wait behind a reader's lock for ever"
    ),
]


class SecretKeyRef(KappaModel):
    name: ObjectName = Field(description="Secret in this namespace.")
    key: str = Field(default="uri", max_length=253, description="Key holding a libpq connection URI.")


class PostgresBackend(KappaModel):
    """A PostgreSQL view over one table per version."""

    secret_ref: SecretKeyRef = Field(description="Connection URI; never copied into status, events or logs.")
    schema_: SqlIdentifier = Field(default="public", alias="schema", description="Schema of view and tables.")
    view: SqlIdentifier = Field(description="The stable view readers query.")
    lock_timeout: LockTimeout = Field(
        default="2s", description="lock_timeout of the cutover transaction; more than 0s."
    )
    retries: int = Field(default=5, ge=0, le=100, description="Cutover retries after a lock timeout.")


class ConfigMapBackend(KappaModel):
    """A ConfigMap pointer that Kafka consumers follow, naming the active topic."""

    name: ObjectName = Field(description="ConfigMap name.")
    key: str = Field(default="activeTopic", max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key.")


class Backend(KappaModel):
    """Where the alias lives. `type` picks the block that must be set."""

    model_config = validated(
        cel(
            "self.type == 'postgres' ? has(self.postgres) && !has(self.configMap)"
            " : has(self.configMap) && !has(self.postgres)",
            "set exactly the block named by type: postgres or configMap",
        )
    )

    type: Literal["postgres", "configMap"] = Field(description="postgres or configMap.")
    postgres: PostgresBackend | None = Field(default=None, description="Settings of type postgres.")
    config_map: ConfigMapBackend | None = Field(default=None, description="Settings of type configMap.")


class MaterializedViewSpec(KappaModel):
    """A stable name for readers. Cutovers swap it atomically, with a compare-and-swap precondition."""

    backend: Backend = Field(description="The alias backend.")
    retain_versions: int = Field(
        default=2, ge=1, le=10, description="How many versions (active included) to keep listed and retained."
    )
    active_version: VersionName | None = Field(
        default=None,
        description="Pin the active version (GitOps rollback). The operator cuts over to it.",
    )


class ViewVersion(KappaModel):
    name: str = Field(max_length=20)
    physical: str = Field(max_length=512, description="Table or topic holding this version.")
    created: datetime | None = None
    state: str = Field(
        max_length=32,
        description="Building, Active, Previous, Retired, or Removing (its output is being removed).",
    )


class MaterializedViewStatus(CommonStatus):
    backend: str | None = Field(default=None, max_length=32)
    versions: list[ViewVersion] = Field(default_factory=list, max_length=32)
    active_version: str | None = Field(default=None, max_length=20)
    previous_version: str | None = Field(default=None, max_length=20)
    last_cutover: datetime | None = None
