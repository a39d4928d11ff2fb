"""A ReplayRun's end states, table-driven: which cleanup each needs, and how an attempt ends (Done, retried
once said, or Failed past spec.timeouts.cleanup naming what is left)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kappa.machines.replay import FINAL, ReplayState
from kappa.machines.replay_cleanup import after_cleanup, cleaned_message, end_work

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CLEANUP = timedelta(minutes=10)
LEFT = (("deployment", "shop-v2"), ("consumer group", "kappa.ns.shop.v2"), ("topic", None), ("table", "t_v2"))


def ended(phase: str, reason: str | None = None) -> ReplayState:
    return ReplayState(phase=phase, reason=reason, entered_at=T0, cutover_from="v1", cutover_to="v2")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("phase", "reason", "job_known", "work", "said"),
    [
        ("Succeeded", "BackfillComplete", True, "StopReplay", "the backfill's deployment is removed"),
        ("Succeeded", "Succeeded", True, "Decommission", "previous version's deployment"),
        ("Failed", "ValidationFailed", True, "StopReplay", "stay for inspection until an abort"),
        ("Failed", "ApprovalTimedOut", True, "StopReplay", "stay for inspection until an abort"),
        ("Failed", "PreflightFailed", True, "Remove", "deployment, consumer group and output are removed"),
        ("Failed", "ValidationFailed", False, "StopReplay", "stay for inspection"),
        ("Aborted", "AbortRequested", True, "Remove", "deployment, consumer group and output are removed"),
        ("RolledBack", "RollbackRequested", True, "SwitchBack", "the view serves v1 again"),
        ("RolledBack", "RollbackRequested", False, "Nothing", "the view serves v1 again"),
    ],
)
def test_each_end_state_names_its_cleanup_and_what_is_said_once_done(
    phase: str, reason: str, job_known: bool, work: str, said: str
) -> None:
    state = ended(phase, reason)
    assert end_work(state, job_known) == work
    assert said in cleaned_message(state)
    done = after_cleanup(state, True, None, CLEANUP, T0 + timedelta(minutes=1), LEFT)
    assert done.cleanup == "Done" and done.conditions == []
    assert [(e.type, e.reason) for e in done.events] == [("Normal", "CleanedUp")]
    assert said in done.events[0].message


def test_every_end_state_has_a_row() -> None:
    assert {p for p in FINAL if end_work(ended(p), True) == "Nothing"} == set()


@pytest.mark.parametrize(
    ("done", "error", "minutes", "cleanup", "retrying", "stalled"),
    [
        (False, None, 5, None, None, False),  # still waiting (a group with members), within the deadline
        (False, None, 10, "Failed", None, True),  # still waiting at the deadline
        (True, "broker down", 5, None, "cleanup failed, retrying: broker down", False),
        (False, "broker down", 11, "Failed", None, True),
        (True, None, 11, "Done", None, False),  # done counts even past the deadline
    ],
)
def test_an_attempt_is_retried_until_spec_timeouts_cleanup_then_fails_naming_what_is_left(
    done: bool, error: str | None, minutes: int, cleanup: str | None, retrying: str | None, stalled: bool
) -> None:
    out = after_cleanup(
        ended("Aborted", "AbortRequested"), done, error, CLEANUP, T0 + timedelta(minutes=minutes), LEFT
    )
    assert (out.cleanup, out.retrying) == (cleanup, retrying)
    assert out.writes == (cleanup is not None or retrying is not None)
    if stalled:
        (condition,) = [c for c in out.conditions if c.type == "Stalled"]
        assert condition.reason == "CleanupFailed"
        assert condition.message == out.events[0].message
        assert [(e.type, e.reason) for e in out.events] == [("Warning", "CleanupTimedOut")]
        assert condition.message.endswith(
            "check and remove by hand: deployment shop-v2, consumer group kappa.ns.shop.v2, table t_v2"
        )
        why = "the last attempt failed: broker down" if error else "it was still waiting"
        assert why in condition.message
