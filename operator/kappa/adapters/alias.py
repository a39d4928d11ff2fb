"""What every MaterializedView backend shares: the result of a cutover and its refusals."""

from __future__ import annotations

from dataclasses import dataclass


class AliasError(Exception):
    """Refused or failed cutover; the message is fit for a condition."""


class AliasMoved(AliasError):
    """The alias points somewhere the caller did not expect: someone repointed it. Nothing was changed."""


@dataclass(frozen=True)
class Cutover:
    view: str
    from_table: str | None
    to_table: str
    duration_ms: int
    attempts: int
    already_done: bool = False
