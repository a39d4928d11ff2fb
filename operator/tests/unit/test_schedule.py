"""When a StreamJob is looked at again: soon while something moves, rarely at rest (machines/cadence.py), and
at once when a watch event wakes it, one look at a time per job, a bounded number at once
(controllers/schedule.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta

import pytest

from kappa.controllers.schedule import Schedule
from kappa.controllers.streamjob import resume_delay
from kappa.machines.cadence import Moving, next_look

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
READY = {"type": "Ready", "status": "True", "reason": "Running", "lastTransitionTime": "2026-11-28T12:00:00Z"}
NOT_READY = {**READY, "status": "False"}


@pytest.mark.parametrize(
    ("moving", "retire_in", "expected"),
    [
        (Moving(), [], 600),  # at rest: the resync
        (Moving(), [timedelta(seconds=90)], 90),  # a previous version retires in 90 s
        (Moving(), [timedelta(hours=2)], 600),
        (Moving(), [timedelta(seconds=-5)], 10),  # due and still there (held): at the interval
        (Moving(step="Savepointing"), [], 10),
        (Moving(requeue_after=2), [], 2),  # a stability window in play: as the upgrade machine asks
        (Moving(step="Starting", requeue_after=30), [], 10),  # never later than the interval while moving
        (Moving(step="Starting", requeue_after=0), [], 1),  # never sooner than a second
        (Moving(ready=False), [], 10),  # e.g. the output topic not ready: Strimzi's status is not watched
        (Moving(canary=True), [], 10),  # the canary's gates read Kafka
        (Moving(replaying=True), [], 10),
        (Moving(acting=True), [], 10),
        (Moving(disposing=True), [], 10),  # FKO disposes of a savepoint: followed at the interval
        (Moving(kafka_down=True), [], 10),
        (Moving(watched_runtime=False), [], 10),  # a session cluster is seen over REST only
    ],
)
def test_next_look(moving: Moving, retire_in: list[timedelta], expected: float) -> None:
    retire = [NOW + d for d in retire_in]
    assert next_look(moving, retire, NOW, interval=10, resync=600) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_due_wake_nudge_and_forget() -> None:
    clock = Clock()
    schedule = Schedule(clock)
    schedule.wake(("ns", "unknown"))  # a job the schedule does not know (deleted, or not looked at yet)
    assert ("ns", "unknown") not in schedule

    schedule.after(("ns", "a"), 600)
    assert schedule.due_in(("ns", "a")) == 600
    clock.now += 30
    schedule.nudge(("ns", "a"), 60)  # its lag moved: looked at 60 s after its last look, not at once
    assert schedule.due_in(("ns", "a")) == 30
    schedule.wake(("ns", "a"))  # a child changed: now
    assert schedule.due_in(("ns", "a")) == 0
    schedule.nudge(("ns", "a"), 60)  # never later than it already is
    assert schedule.due_in(("ns", "a")) == 0

    assert schedule.due_now() == 1  # the queue's depth (kappa_schedule_due)
    schedule.forget(("ns", "a"))
    assert schedule.due_now() == 0
    assert ("ns", "a") not in schedule
    assert schedule.due_in(("ns", "a")) is None


def test_looks_run_when_due_soonest_first_bounded_and_one_per_job() -> None:
    async def story() -> None:
        schedule = Schedule()
        looked: list[Hashable] = []
        concurrent = 0
        most = 0
        gate = asyncio.Event()

        async def look(key: Hashable) -> float:
            nonlocal concurrent, most
            concurrent += 1
            most = max(most, concurrent)
            looked.append(key)
            await gate.wait()
            concurrent -= 1
            return 3600.0  # at rest: not again during this test

        for i, due in enumerate([0.03, 0.01, 0.02, 0.5, 0.04]):
            schedule.after(("ns", f"job{i}"), due)
        runner = asyncio.create_task(schedule.run(look, workers=2))
        await asyncio.sleep(0.2)
        assert looked == [("ns", "job1"), ("ns", "job2")]  # soonest due first, two at a time
        assert schedule.running == 2
        schedule.wake(("ns", "job1"))  # changed during its look: looked at again after it, not beside it
        gate.set()
        await asyncio.sleep(0.2)
        assert most == 2
        assert looked[:5] == [("ns", "job1"), ("ns", "job2"), ("ns", "job0"), ("ns", "job4"), ("ns", "job1")]
        await asyncio.sleep(0.5)
        assert looked.count(("ns", "job3")) == 1  # due at 0.5 s
        assert len(looked) == 6
        assert schedule.due_in(("ns", "job3")) == pytest.approx(3600, abs=1)

        schedule.forget(("ns", "job3"))
        schedule.wake(("ns", "job3"))  # gone: no look
        await asyncio.sleep(0.1)
        assert len(looked) == 6
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner

    asyncio.run(story())


@pytest.mark.parametrize(
    ("status", "delay"),
    [
        ({}, 0.0),  # never looked at
        ({"phase": "Running", "conditions": [READY]}, 3.0),
        ({"phase": "Suspended", "conditions": [READY]}, 3.0),
        ({"phase": "Running", "conditions": [NOT_READY]}, 0.0),
        ({"phase": "Upgrading", "conditions": [READY]}, 0.0),
        (
            {
                "phase": "Running",
                "upgrade": {"step": "Starting"},
                "conditions": [READY],
            },
            0.0,
        ),
        (
            {
                "phase": "Running",
                "canary": {"step": "Analysing"},
                "conditions": [READY],
            },
            0.0,
        ),
    ],
)
def test_at_start_moving_jobs_are_looked_at_first(status: dict[str, object], delay: float) -> None:
    assert resume_delay(status) == delay


@pytest.mark.parametrize(
    ("observed", "generation", "delay"),
    [
        (2, 2, 3.0),  # at rest, spec as last looked at
        (1, 2, 0.0),  # its spec changed while the operator was down: it moves, so it goes first
        (None, 2, 0.0),
    ],
)
def test_at_start_a_job_whose_spec_changed_while_down_goes_first(
    observed: int | None, generation: int, delay: float
) -> None:
    status = {"phase": "Running", "conditions": [READY], "observedGeneration": observed}
    assert resume_delay(status, generation) == delay
