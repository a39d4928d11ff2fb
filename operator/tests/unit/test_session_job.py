"""The session runtime's step as a table: desired state, record, what Flink reports → record, REST call."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kappa.machines.session_job import (
    Cancel,
    Desired,
    JobSeen,
    Record,
    Seen,
    Stop,
    Submit,
    TriggerSeen,
    job_id,
    lifecycle,
    step,
    trigger_id,
)

UID = "0f0e-uid"
RUNNING = Desired("running")
SUSPENDED = Desired("suspended")
ID1, ID2 = job_id(UID, 1), job_id(UID, 2)
LIVE = Record(attempt=1, job_id=ID1, seen=True, initial_used=True, job_state="RUNNING")
STOPPED = replace(LIVE, job_state="FINISHED", suspended=True, savepoint_path="file:/sp/1", savepoint_ms=5)


CASES = [
    # (name, desired, record, seen, expected action, expected record fields)
    ("first deploy submits a fresh job", RUNNING, Record(), Seen(), Submit(ID1, None), {"attempt": 1}),
    (
        "first deploy from initialSavepointPath",
        Desired("running", initial_savepoint="file:/sp/0"),
        Record(),
        Seen(),
        Submit(ID1, "file:/sp/0"),
        {"submit_from": "file:/sp/0", "initial_used": True},
    ),
    (
        "a submit that never arrived is sent again with the same id",
        RUNNING,
        replace(LIVE, seen=False, job_state="RECONCILING"),
        Seen(job=None),
        Submit(ID1, None),
        {"attempt": 1},
    ),
    (
        "running stays running",
        RUNNING,
        LIVE,
        Seen(JobSeen("RUNNING", 10, 10, 20)),
        None,
        {"last_checkpoint_ms": 20},
    ),
    (
        "suspend stops with a savepoint under a chosen trigger id",
        SUSPENDED,
        LIVE,
        Seen(JobSeen("RUNNING")),
        Stop(ID1, trigger_id(UID, 1)),
        {"stop_trigger": trigger_id(UID, 1)},
    ),
    (
        "a completed stop records the savepoint",
        SUSPENDED,
        replace(LIVE, stop_trigger="t", stopping_job=ID1),
        Seen(JobSeen("FINISHED"), TriggerSeen(done=True, location="file:/sp/9")),
        None,
        {"savepoint_path": "file:/sp/9", "suspended": True, "stop_trigger": None, "job_state": "FINISHED"},
    ),
    (
        "a failed stop is an error, and the job keeps running",
        SUSPENDED,
        replace(LIVE, stop_trigger="t", stopping_job=ID1),
        Seen(JobSeen("RUNNING"), TriggerSeen(done=True, failure="Checkpoint expired")),
        None,
        {"error": "Checkpoint expired", "stop_trigger": None, "stop_tries": 1},
    ),
    (
        "after a failed stop, the next asks under a new trigger id (Flink answers a known id from its cache)",
        SUSPENDED,
        replace(LIVE, stop_tries=1, error="Not all required tasks are currently running"),
        Seen(JobSeen("RUNNING")),
        Stop(ID1, trigger_id(UID, 1, 1)),
        {"stop_trigger": trigger_id(UID, 1, 1), "stop_tries": 1},
    ),
    (
        "a stop Flink does not know while the job runs is asked again, under the same id",
        SUSPENDED,
        replace(LIVE, stop_trigger="t", stopping_job=ID1),
        Seen(JobSeen("RUNNING"), None),
        Stop(ID1, "t"),
        {"stop_trigger": "t"},
    ),
    (
        "a stop Flink does not know, of a job that is gone, is over",
        SUSPENDED,
        replace(LIVE, stop_trigger="t", stopping_job=ID1),
        Seen(None, None),
        None,
        {"stop_trigger": None, "stopping_job": None},
    ),
    (
        "a resume starts counting the stops of its attempt again",
        RUNNING,
        replace(STOPPED, stop_tries=2),
        Seen(JobSeen("FINISHED")),
        Submit(ID2, "file:/sp/1"),
        {"attempt": 2, "stop_tries": 0},
    ),
    (
        "a stop in flight is waited for",
        SUSPENDED,
        replace(LIVE, stop_trigger="t", stopping_job=ID1),
        Seen(JobSeen("RUNNING"), TriggerSeen(done=False)),
        None,
        {"stop_trigger": "t"},
    ),
    ("suspended stays suspended", SUSPENDED, STOPPED, Seen(JobSeen("FINISHED")), None, {"suspended": True}),
    (
        "resume restores from the suspend's savepoint under a new job id",
        RUNNING,
        STOPPED,
        Seen(JobSeen("FINISHED")),
        Submit(ID2, "file:/sp/1"),
        {"attempt": 2, "job_id": ID2, "suspended": False},
    ),
    (
        "a new savepointRedeployNonce restores from initialSavepointPath",
        Desired("running", initial_savepoint="file:/sp/7", nonce=42),
        STOPPED,
        Seen(JobSeen("FINISHED")),
        Submit(ID2, "file:/sp/7"),
        {"deployed_nonce": 42},
    ),
    (
        "a redeploy cancels the live job first",
        Desired("running", initial_savepoint="file:/sp/7", nonce=42),
        LIVE,
        Seen(JobSeen("RUNNING")),
        Cancel(ID1),
        {"attempt": 1},
    ),
    (
        "a failed job stays failed with its cause, as with FKO",
        RUNNING,
        LIVE,
        Seen(JobSeen("FAILED", failure="ArithmeticException: / by zero")),
        None,
        {"job_state": "FAILED", "error": "ArithmeticException: / by zero"},
    ),
    (
        "a job the cluster lost restarts from the last savepoint",
        RUNNING,
        replace(LIVE, savepoint_path="file:/sp/3"),
        Seen(job=None),
        Submit(ID2, "file:/sp/3"),
        {"attempt": 2},
    ),
    ("a bounded job that finished stays finished", RUNNING, LIVE, Seen(JobSeen("FINISHED")), None, {}),
]


@pytest.mark.parametrize(
    ("name", "desired", "record", "seen", "action", "fields"), CASES, ids=[c[0] for c in CASES]
)
def test_step(
    name: str, desired: Desired, record: Record, seen: Seen, action: object, fields: dict[str, object]
) -> None:
    nxt, got = step(desired, record, seen, UID, now_ms=1000)
    assert got == action
    for key, value in fields.items():
        assert getattr(nxt, key) == value, key


def test_trigger_ids_are_new_per_try_and_the_first_is_as_before() -> None:
    # The first try's id is the one records written before stop_tries existed name.
    assert trigger_id(UID, 1) == trigger_id(UID, 1, 0)
    assert len({trigger_id(UID, 1, tries) for tries in range(3)} | {trigger_id(UID, 2)}) == 4
    assert len(trigger_id(UID, 1, 2)) == 32


def test_job_ids_are_new_per_attempt_and_per_record() -> None:
    assert len(job_id(UID, 1)) == 32
    assert int(job_id(UID, 1), 16) >= 0
    assert job_id(UID, 1) != job_id(UID, 2)
    assert job_id(UID, 1) != job_id("another-uid", 1)


@pytest.mark.parametrize(
    ("record", "desired", "expected"),
    [
        (Record(), RUNNING, "CREATED"),
        (LIVE, RUNNING, "STABLE"),
        (replace(LIVE, job_state="RESTARTING"), RUNNING, "DEPLOYED"),
        (STOPPED, SUSPENDED, "SUSPENDED"),
        (replace(LIVE, job_state="FAILED"), RUNNING, "FAILED"),
    ],
)
def test_lifecycle_as_fko_reports_it(record: Record, desired: Desired, expected: str) -> None:
    assert lifecycle(record, desired) == expected
