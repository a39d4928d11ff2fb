"""What every MaterializedView backend shares: the result of a cutover and its refusals."""

from __future__ import annotations

from dataclasses import dataclass


class AliasError(Exception):
    """Refused or failed cutover; the message is fit for a condition."""


class AliasMoved(AliasError):
    """The alias points somewhere the caller did not expect: someone repointed it. Nothing was changed.
    Raised only after the alias was read; a backend that could not be asked raises BackendUnavailable."""


class BackendUnavailable(AliasError):
    """The backend did not answer (connection refused, timed out or dropped): where the alias points is
    unknown, and a switch under way either committed in full or not at all. An outage: ask again later."""


@dataclass(frozen=True)
class Cutover:
    view: str
    from_table: str | None
    to_table: str
    duration_ms: int
    attempts: int
    already_done: bool = False
