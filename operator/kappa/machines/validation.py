"""The validation gates of a ReplayRun before cutover, judged from what the serving adapter measured: count
ratio against the active version, a sampled key diff, SQL checks, and the explicit "no data" policy. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from kappa.machines.preflight import Check


@dataclass(frozen=True)
class KeyDiff:
    sampled: int
    differing: int
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measured:
    active: str | None
    """The active version's physical name; None when nothing is active yet."""
    new: str
    active_count: int | None
    new_count: int | None
    key_diff: KeyDiff | str | None = None
    """The diff, an error message, or None when not asked for."""
    sql: tuple[tuple[str, bool, str], ...] = ()
    unsupported: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Gates:
    ratio_min: float | None
    ratio_max: float | None
    max_mismatch_ratio: float | None
    """None: no key diff asked for."""
    no_data: Literal["Fail", "Pass"]


def _no_data(gates: Gates, what: str) -> Check:
    if gates.no_data == "Pass":
        return Check("NoData", "OK", "NoDataPassed", f"{what}; spec.validation.noData is Pass")
    return Check("NoData", "Error", "NoData", f"{what}; spec.validation.noData is Fail")


def count_ratio(m: Measured, gates: Gates) -> Check:
    if m.new_count is None:
        return Check("CountRatio", "Error", "OutputMissing", f"the new output {m.new} does not exist")
    if m.active is None or m.active_count is None:
        return _no_data(gates, "no active version to compare with")
    if m.active_count == 0:
        if m.new_count == 0:
            return _no_data(gates, "both outputs are empty")
        return Check(
            "CountRatio", "Error", "ActiveEmpty", f"{m.active} is empty but {m.new} has {m.new_count}"
        )
    ratio = m.new_count / m.active_count
    message = (
        f"{m.new} has {m.new_count}, {m.active} has {m.active_count}: ratio {ratio:.4f}, "
        f"allowed [{_bound(gates.ratio_min)}, {_bound(gates.ratio_max)}]"
    )
    inside = (gates.ratio_min is None or ratio >= gates.ratio_min) and (
        gates.ratio_max is None or ratio <= gates.ratio_max
    )
    return Check("CountRatio", "OK" if inside else "Error", "Within" if inside else "OutOfBounds", message)


def key_diff(m: Measured, gates: Gates) -> Check | None:
    if gates.max_mismatch_ratio is None:
        return None
    if isinstance(m.key_diff, str):
        return Check("KeyDiff", "Error", "DiffFailed", m.key_diff)
    if m.key_diff is None or m.key_diff.sampled == 0:
        return _no_data(gates, "no keys to sample in the active version")
    share = m.key_diff.differing / m.key_diff.sampled
    examples = f" (e.g. {', '.join(m.key_diff.examples)})" if m.key_diff.examples else ""
    message = (
        f"{m.key_diff.differing} of {m.key_diff.sampled} sampled keys differ: {share:.2%}, "
        f"allowed {gates.max_mismatch_ratio:.2%}{examples}"
    )
    ok = share <= gates.max_mismatch_ratio
    return Check("KeyDiff", "OK" if ok else "Error", "Within" if ok else "TooManyDiffer", message)


def evaluate(m: Measured, gates: Gates) -> tuple[Check, ...]:
    checks = [count_ratio(m, gates)]
    diff = key_diff(m, gates)
    if diff is not None:
        checks.append(diff)
    for name, passed, message in m.sql:
        checks.append(
            Check(f"sql/{name}", "OK" if passed else "Error", "Passed" if passed else "Failed", message)
        )
    for what in m.unsupported:
        checks.append(Check("Unsupported", "Error", "Unsupported", what))
    return tuple(checks)


def _bound(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
