"""The MaterializedView alias: first version, pins, accepted ReplayRun switches, and refused hand edits."""

from __future__ import annotations

import pytest

from kappa.machines.cutover import Switch, ViewObserved, decide_view


def seen(**kw: object) -> ViewObserved:
    base: dict[str, object] = {"target": "v1", "recorded": "v1", "available": frozenset({"v1", "v2"})}
    return ViewObserved(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("case", "observed", "switch", "active", "previous", "reason"),
    [
        ("serving what was recorded", seen(), None, "v1", None, "Serving"),
        (
            "a new view follows the job's first version",
            seen(target=None, recorded=None, job_active="v1"),
            Switch(None, "v1"),
            None,
            None,
            "Switching",
        ),
        (
            "no output yet: wait",
            seen(target=None, recorded=None, job_active="v1", available=frozenset()),
            None,
            None,
            None,
            "AwaitingFirstVersion",
        ),
        (
            "a ReplayRun's cutover is accepted",
            seen(target="v2", explained=frozenset({"v2"})),
            None,
            "v2",
            "v1",
            "Switched",
        ),
        (
            "a hand repoint is refused, the record kept",
            seen(target="(sessions_hotfix)"),
            None,
            "v1",
            None,
            "AliasMoved",
        ),
        ("a view dropped by hand is not recreated", seen(target=None), None, "v1", None, "AliasMoved"),
        ("a view found in place is adopted", seen(recorded=None), None, "v1", None, "Adopted"),
        (
            "a pin switches from what is there now",
            seen(target="v2", recorded="v2", recorded_previous="v1", pin="v1"),
            Switch("v2", "v1"),
            "v2",
            "v1",
            "Switching",
        ),
        ("a pin already served", seen(pin="v1"), None, "v1", None, "Pinned"),
        (
            "a pin to a version with no table stalls",
            seen(pin="v9"),
            None,
            "v1",
            None,
            "PinnedVersionMissing",
        ),
    ],
)
def test_view(
    case: str,
    observed: ViewObserved,
    switch: Switch | None,
    active: str | None,
    previous: str | None,
    reason: str,
) -> None:
    decision = decide_view(observed)
    assert decision.switch == switch
    assert (decision.active, decision.previous) == (active, previous)
    assert {c.reason for c in decision.conditions} == {reason}
