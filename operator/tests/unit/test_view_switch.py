"""The MaterializedView alias: first version, pins, accepted ReplayRun switches, and refused hand edits."""

from __future__ import annotations

import dataclasses

import pytest

from kappa.api.materializedview import ViewVersion
from kappa.controllers.materializedview.retention import retired
from kappa.machines.view_switch import Switch, ViewObserved, decide_view, switch_of


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
    assert switch_of(decision) == switch
    assert (decision.state.active, decision.state.previous) == (active, previous)
    assert {c.reason for c in decision.conditions} == {reason}


# Events: a stall of the view is said when it begins and when it ends, not on the looks while it lasts; each
# look is told the Stalled reason the look before wrote.
STALL_STORIES = [
    # name, [(observed without `stalled`, the reasons said)]
    (
        "repointed by hand, then set back",
        [
            (seen(target="(sessions_hotfix)"), ["AliasMoved"]),
            (seen(target="(sessions_hotfix)"), []),
            (seen(), ["Recovered"]),
            (seen(), []),
        ],
    ),
    (
        "a pin to a missing version, then the pin is removed",
        [
            (seen(pin="v9"), ["PinnedVersionMissing"]),
            (seen(pin="v9"), []),
            (seen(), ["Recovered"]),
            (seen(), []),
        ],
    ),
    (
        "a ReplayRun's cutover is said once",
        [
            (seen(target="v2", explained=frozenset({"v2"})), ["Switched"]),
            (seen(target="v2", recorded="v2", recorded_previous="v1"), []),
        ],
    ),
]


@pytest.mark.parametrize(("name", "looks"), STALL_STORIES, ids=[s[0] for s in STALL_STORIES])
def test_a_stall_is_said_when_it_begins_and_when_it_ends(
    name: str, looks: list[tuple[ViewObserved, list[str]]]
) -> None:
    stalled_now: str | None = None
    said = []
    for observed, _ in looks:
        decision = decide_view(dataclasses.replace(observed, stalled=stalled_now))
        said.append([e.reason for e in decision.events])
        stall = next((c for c in decision.conditions if c.type == "Stalled"), None)
        stalled_now = stall.reason if stall is not None and stall.status else None
    assert said == [expected for _, expected in looks]


def test_a_version_retired_is_said_once() -> None:
    before = [
        ViewVersion(name="v1", physical="sessions_v1", state="Previous"),
        ViewVersion(name="v2", physical="sessions_v2", state="Active"),
        ViewVersion(name="v3", physical="sessions_v3", state="Building"),
    ]
    after = [
        ViewVersion(name="v1", physical="sessions_v1", state="Retired"),
        ViewVersion(name="v2", physical="sessions_v2", state="Previous"),
        ViewVersion(name="v3", physical="sessions_v3", state="Active"),
    ]
    said = retired(before, after)
    assert [(e.type, e.reason) for e in said] == [("Normal", "VersionRetired")]
    assert "version v1 (sessions_v1) retired: was Previous, now Retired" in said[0].message
    assert retired(after, after) == []  # the next look reads the state written with it
    beyond = retired(after, after[1:])  # no longer listed: beyond retainVersions
    assert beyond == []  # v1 was already Retired
    dropped = retired(before, after[1:])
    assert "no longer listed" in dropped[0].message
