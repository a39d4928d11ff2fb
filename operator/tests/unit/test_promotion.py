"""Which version a StreamJob runs once ReplayRuns have cut over or rolled back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kappa.api.streamjob_status import PromotionRecord
from kappa.machines.promotion import Live, RunSeen, live_version

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def run(name: str, phase: str, frm: str = "v1", to: str = "v2", minutes: int = 0) -> RunSeen:
    at = T0 + timedelta(minutes=minutes)
    return RunSeen(name, phase, frm, to, at, at + timedelta(minutes=30))


RECORD = PromotionRecord(run="fix", version="v2", from_version="v1")


@pytest.mark.parametrize(
    ("case", "spec_version", "recorded", "runs", "version", "adopt"),
    [
        ("no runs: spec.version", "v1", None, [], "v1", False),
        (
            "a run before cutover changes nothing",
            "v1",
            None,
            [RunSeen("fix", "Replaying", None, "v2", None, None)],
            "v1",
            False,
        ),
        ("cut over: the replayed version, spec untouched", "v1", None, [run("fix", "Observing")], "v2", True),
        ("succeeded: still the replayed version", "v1", None, [run("fix", "Succeeded")], "v2", True),
        ("spec caught up with the run", "v2", None, [run("fix", "Succeeded")], "v2", True),
        ("rolled back: the replaced version again", "v1", None, [run("fix", "RolledBack")], "v1", True),
        ("the record outlives a deleted run", "v1", RECORD, [], "v2", True),
        ("spec moved on: a normal upgrade", "v3", RECORD, [], "v3", False),
        (
            "the latest cutover wins",
            "v2",
            None,
            [run("fix", "Succeeded"), run("again", "Observing", "v2", "v3", minutes=40)],
            "v3",
            True,
        ),
    ],
)
def test_live_version(
    case: str,
    spec_version: str,
    recorded: PromotionRecord | None,
    runs: list[RunSeen],
    version: str,
    adopt: bool,
) -> None:
    live = live_version(spec_version, recorded, runs)
    assert (live.version, live.adopt) == (version, adopt)


def test_the_record_names_the_run_and_its_window() -> None:
    live = live_version("v1", None, [run("fix", "Observing")])
    assert live == Live(
        "v2",
        True,
        PromotionRecord(run="fix", version="v2", from_version="v1", retire_at=T0 + timedelta(minutes=30)),
    )
    assert live.record is not None
    assert live.record.wire() == {
        "run": "fix",
        "version": "v2",
        "fromVersion": "v1",
        "rolledBack": False,
        "retireAt": "2026-11-21T12:30:00Z",
    }
