"""The MaterializedView's view switch: which version its alias serves, when it switches by itself (the first
version, a `spec.activeVersion` pin), and when a switch it did not make is accepted (a ReplayRun's cutover or
rollback) or refused (someone repointed it by hand). Pure: (observed, recorded) → decision: the
`ViewState` to record (active, previous) and, when the view switches by itself, one `Switch` action.
"""

from __future__ import annotations

from dataclasses import dataclass

from kappa.api.conditions import progressing, ready, stalled
from kappa.machines.decision import Decision, Event


@dataclass(frozen=True)
class ViewObserved:
    target: str | None
    """The version the alias serves now; "(name)" for something that is no version of the job; None: none."""
    recorded: str | None
    """status.activeVersion: what the operator last switched to or accepted."""
    recorded_previous: str | None = None
    pin: str | None = None
    job_active: str | None = None
    """The StreamJob's active version: the first version a new view serves."""
    explained: frozenset[str] = frozenset()
    """Versions a ReplayRun switched the view to (cutover) or back to (rollback)."""
    available: frozenset[str] = frozenset()
    """Versions whose table or topic exists."""
    stalled: str | None = None
    """The reason of the view's Stalled condition while it holds: a stall is said once when it begins, and
    once when it ends, not on every look."""


@dataclass(frozen=True)
class Switch:
    """Switch the view's alias to `to`, on condition that it still serves `expected` (compare-and-swap)."""

    expected: str | None
    to: str


@dataclass(frozen=True)
class ViewState:
    """What status records: the version served and the one before it."""

    active: str | None
    previous: str | None


ViewDecision = Decision[ViewState, Switch]


def switch_of(decision: ViewDecision) -> Switch | None:
    """The view's own switch, when the decision makes one (at most one)."""
    return decision.actions[0] if decision.actions else None


def _moved(seen: ViewObserved) -> ViewDecision:
    message = (
        f"the view serves {seen.target or 'nothing'}, but the operator last set "
        f"{seen.recorded or 'nothing'}: "
        "it was repointed outside the operator. Nothing is overwritten; set spec.activeVersion to choose."
    )
    return ViewDecision(
        ViewState(seen.recorded, seen.recorded_previous),
        conditions=stalled("AliasMoved", message),
        events=_once(seen, "AliasMoved", message),
    )


def _once(seen: ViewObserved, reason: str, message: str) -> list[Event]:
    """A Warning when the stall begins, none on the looks while it lasts."""
    return [] if seen.stalled == reason else [Event("Warning", reason, message)]


def _serving(seen: ViewObserved, active: str, reason: str, message: str) -> ViewDecision:
    """At rest: nothing to say, unless this look ends a stall (said once, as its beginning was)."""
    events = [Event("Normal", "Recovered", f"{message}: {seen.stalled} is over")] if seen.stalled else []
    return ViewDecision(
        ViewState(active, seen.recorded_previous), conditions=ready(reason, message), events=events
    )


def _accept(seen: ViewObserved, reason: str, message: str) -> ViewDecision:
    assert seen.target is not None
    previous = seen.recorded if seen.recorded != seen.target else seen.recorded_previous
    return ViewDecision(
        ViewState(seen.target, previous),
        conditions=ready(reason, message),
        events=[Event("Normal", reason, message)],
    )


def decide_view(seen: ViewObserved) -> ViewDecision:
    if seen.pin:
        if seen.target == seen.pin:
            if seen.recorded != seen.pin:
                return _accept(seen, "Pinned", f"serving {seen.pin}, pinned by spec.activeVersion")
            return _serving(seen, seen.pin, "Pinned", f"serving pinned {seen.pin}")
        if seen.pin not in seen.available:
            message = f"spec.activeVersion: version {seen.pin} has no table or topic to serve"
            return ViewDecision(
                ViewState(seen.recorded, seen.recorded_previous),
                conditions=stalled("PinnedVersionMissing", message),
                events=_once(seen, "PinnedVersionMissing", message),
            )
        # A declared pin is an explicit wish: the precondition is what is there now, so that nothing that
        # changes between this look and the switch is overwritten.
        return ViewDecision(
            ViewState(seen.recorded, seen.recorded_previous),
            actions=[Switch(seen.target, seen.pin)],
            conditions=progressing("Switching", f"switching to pinned {seen.pin}"),
        )
    if seen.target is None:
        if seen.recorded is not None:
            return _moved(seen)
        if seen.job_active and seen.job_active in seen.available:
            return ViewDecision(
                ViewState(None, None),
                actions=[Switch(None, seen.job_active)],
                conditions=progressing("Switching", f"creating the view over {seen.job_active}"),
            )
        return ViewDecision(
            ViewState(None, None),
            conditions=progressing("AwaitingFirstVersion", "no version has an output to serve yet"),
        )
    if seen.target == seen.recorded:
        return _serving(seen, seen.target, "Serving", f"serving {seen.target}")
    if seen.target in seen.explained:
        return _accept(seen, "Switched", f"serving {seen.target} (was {seen.recorded or 'nothing'})")
    if seen.recorded is None and not seen.target.startswith("("):
        return _accept(seen, "Adopted", f"serving {seen.target}, found in place")
    return _moved(seen)
