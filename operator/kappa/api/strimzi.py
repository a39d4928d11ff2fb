"""The parts of Strimzi's own statuses the operator reads: a Kafka's listeners (where its bootstrap servers
are) and a KafkaUser's Secret. Not kappa.dev kinds: no CRD is generated from these; they ignore every field
they do not name."""

from __future__ import annotations

from typing import Any, Self

from kappa.api.base import KappaModel


class ListenerStatus(KappaModel):
    """One entry of a Kafka's status.listeners."""

    name: str | None = None
    bootstrap_servers: str | None = None


class KafkaStatus(KappaModel):
    """status of a Strimzi Kafka."""

    listeners: list[ListenerStatus] = []

    @classmethod
    def of(cls, obj: dict[str, Any] | None) -> Self:
        """The status of a Kafka as the API server returned it; empty for none (not there, not ready)."""
        return cls.model_validate((obj or {}).get("status") or {})


class KafkaUserStatus(KappaModel):
    """status of a Strimzi KafkaUser, written by the User Operator."""

    username: str | None = None
    """The user's name on the cluster."""
    secret: str | None = None
    """The Secret holding the user's credentials."""

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Self:
        return cls.model_validate(obj.get("status") or {})
