"""One version's job on a Flink session cluster, driven the way FKO drives a FlinkDeployment: a pure step from
(the desired state, what the runtime recorded, what Flink's REST API reports) to (the next record, one REST
action). The session runtime (adapters/job_runtime/) records the result before it acts, so a crash between
the two repeats an idempotent call at most: every job id and savepoint trigger id is chosen here and recorded
first, and Flink refuses a second job with the same id.

    (none) ─running─▶ Submitting ─seen─▶ live (RUNNING, RESTARTING, ...) ─suspended─▶ Stopping
                                           │ FAILED: stays FAILED (as FKO)              │ savepoint
                                           ▼                                            ▼
                                         FAILED                         Suspended (FINISHED, path kept)
                                                        ─running─▶ Submitting (new id, from the savepoint)

FKO's semantics are kept where the machines rely on them: `initialSavepointPath` is used on the first deploy,
or again when `savepointRedeployNonce` changes; a resume after a suspend restores from the suspend's savepoint
(`upgradeSavepointPath`); a job that failed stays FAILED until the spec asks for a redeploy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Literal

LIVE_STATES = {"INITIALIZING", "CREATED", "RUNNING", "FAILING", "RESTARTING", "CANCELLING", "RECONCILING"}
"""Flink job states in which the job still holds slots and can be stopped."""


@dataclass(frozen=True)
class Desired:
    """What the rendered FlinkDeployment spec asks of this version."""

    state: Literal["running", "suspended"] = "running"
    initial_savepoint: str | None = None
    nonce: int | None = None


@dataclass(frozen=True)
class Record:
    """What the runtime keeps per version, FKO's status in spirit. Written before every REST action."""

    attempt: int = 0
    job_id: str | None = None
    submit_from: str | None = None
    """The savepoint the current attempt restores from (None: a fresh start)."""
    seen: bool = False
    """The current attempt was seen in Flink: a job id that is gone after that is lost, not pending."""
    deployed_nonce: int | None = None
    initial_used: bool = False
    """The first deploy happened (initialSavepointPath counts only then, or with a new nonce)."""
    job_state: str | None = None
    start_time_ms: int | None = None
    update_time_ms: int | None = None
    last_checkpoint_ms: int | None = None
    stop_trigger: str | None = None
    """A stop-with-savepoint in flight: its trigger id."""
    stop_tries: int = 0
    """Stops of this attempt that failed (Flink refuses one while the tasks are still being deployed): the
    next asks under a new trigger id, as Flink answers an id it knows from its cache of results."""
    stopping_job: str | None = None
    savepoint_path: str | None = None
    savepoint_ms: int | None = None
    suspended: bool = False
    """Stopped by us with a savepoint: a resume restores from savepoint_path."""
    error: str | None = None


@dataclass(frozen=True)
class JobSeen:
    state: str
    start_time_ms: int | None = None
    update_time_ms: int | None = None
    last_checkpoint_ms: int | None = None
    failure: str | None = None
    """The job's latest exception (its exception history has one per failure, restarted from or not)."""


@dataclass(frozen=True)
class TriggerSeen:
    """A savepoint or stop trigger's outcome: still running, a location, or a failure cause."""

    done: bool = False
    location: str | None = None
    failure: str | None = None


@dataclass(frozen=True)
class Seen:
    job: JobSeen | None = None
    """The recorded attempt's job, or None when Flink does not know it."""
    trigger: TriggerSeen | None = None


@dataclass(frozen=True)
class Submit:
    job_id: str
    savepoint: str | None


@dataclass(frozen=True)
class Stop:
    job_id: str
    trigger_id: str


@dataclass(frozen=True)
class Cancel:
    job_id: str


Action = Submit | Stop | Cancel


def job_id(record_uid: str, attempt: int) -> str:
    """A job id per attempt, derived from the record's uid (new for every (re)created version): Flink refuses
    a job id it has seen finish, so an id is never reused, and a retried submit of one attempt cannot run
    twice."""
    return hashlib.sha256(f"{record_uid}/{attempt}".encode()).hexdigest()[:32]


def trigger_id(record_uid: str, attempt: int, tries: int = 0) -> str:
    """Flink takes the caller's trigger id (32 hex digits), so a repeated stop request is the same one. A
    trigger id Flink knows is answered from its cache of results (`rest.async.store-duration`, 5 minutes),
    so a stop asked again after a failure needs a new one: one per try."""
    name = f"{record_uid}/{attempt}/stop" + (f"/{tries}" if tries else "")
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def _folded(rec: Record, seen: Seen) -> Record:
    """The observation folded into the record."""
    job = seen.job
    if job is None:
        return rec
    return replace(
        rec,
        seen=True,
        job_state=job.state,
        start_time_ms=job.start_time_ms or rec.start_time_ms,
        update_time_ms=job.update_time_ms or rec.update_time_ms,
        last_checkpoint_ms=job.last_checkpoint_ms or rec.last_checkpoint_ms,
        # This attempt's latest exception, restarted from or fatal: FKO's `error`, read by the NoNewExceptions
        # gate. A failed stop's cause stays until the job runs cleanly again.
        error=job.failure or (rec.error if job.state != "RUNNING" else None),
    )


def _submit(rec: Record, uid: str, savepoint: str | None, desired: Desired) -> tuple[Record, Action]:
    attempt = rec.attempt + 1
    jid = job_id(uid, attempt)
    nxt = replace(
        rec,
        attempt=attempt,
        job_id=jid,
        submit_from=savepoint,
        seen=False,
        deployed_nonce=desired.nonce,
        initial_used=True,
        stop_tries=0,
        job_state="RECONCILING",
        start_time_ms=None,
        update_time_ms=None,
        last_checkpoint_ms=None,
        suspended=False,
        error=None,
    )
    return nxt, Submit(jid, savepoint)


def step(desired: Desired, rec: Record, seen: Seen, uid: str, now_ms: int) -> tuple[Record, Action | None]:
    """One convergence step. The caller records the returned record, then carries out the action."""
    rec = _folded(rec, seen)
    live = seen.job is not None and seen.job.state in LIVE_STATES

    if rec.stop_trigger:  # a stop with savepoint is in flight
        trigger = seen.trigger
        if trigger is not None and trigger.done and trigger.location:
            return replace(
                rec,
                stop_trigger=None,
                stopping_job=None,
                savepoint_path=trigger.location,
                savepoint_ms=now_ms,
                suspended=True,
                job_state=seen.job.state if seen.job and not live else "FINISHED",
                error=None,
            ), None
        if trigger is not None and trigger.done:
            failed = replace(
                rec,
                stop_trigger=None,
                stopping_job=None,
                stop_tries=rec.stop_tries + 1,
                error=trigger.failure or "savepoint failed",
            )
            return failed, None  # the next step asks again, under a new trigger id, while still suspended
        if trigger is None and not live:
            # Flink forgot the trigger (a restarted JobManager) and the job is gone: nothing left to stop.
            return replace(rec, stop_trigger=None, stopping_job=None), None
        if trigger is None and desired.state == "suspended":
            # The job runs and Flink does not know the trigger: the request never arrived (refused, or the
            # cluster was away), or its result was dropped from Flink's cache. The same request again.
            return rec, Stop(rec.stopping_job or str(rec.job_id), rec.stop_trigger)
        if desired.state == "suspended" or trigger is not None:
            return rec, None

    if desired.state == "suspended":
        if live and rec.job_id:
            trig = trigger_id(uid, rec.attempt, rec.stop_tries)
            return replace(rec, stop_trigger=trig, stopping_job=rec.job_id), Stop(rec.job_id, trig)
        return rec, None

    # desired running
    redeploy = desired.initial_savepoint is not None and (
        not rec.initial_used or desired.nonce != rec.deployed_nonce
    )
    if redeploy:
        if live and rec.job_id:
            return rec, Cancel(rec.job_id)  # FKO redeploys from initialSavepointPath without a savepoint
        return _submit(rec, uid, desired.initial_savepoint, desired)
    if rec.job_id is None:
        return _submit(rec, uid, None, desired)
    if live:
        return rec, None
    if seen.job is None and not rec.seen:
        return rec, Submit(rec.job_id, rec.submit_from)  # a submit that may not have arrived: same id
    if rec.suspended:
        return _submit(rec, uid, rec.savepoint_path, desired)  # resume from the suspend's savepoint
    if seen.job is None:
        # The cluster lost the job (a JobManager without HA restarted): start again from the last savepoint.
        lost = f"job {rec.job_id} is no longer known to the session cluster"
        nxt, action = _submit(rec, uid, rec.savepoint_path, desired)
        return replace(nxt, error=lost), action
    return rec, None  # FAILED, FINISHED (a bounded job) or CANCELED stay as they are, as with FKO


def lifecycle(rec: Record, desired: Desired) -> str:
    """FKO's lifecycleState for the same facts (CommonStatus.getLifecycleState)."""
    if rec.job_state == "FAILED":
        return "FAILED"
    if desired.state == "suspended" and rec.suspended:
        return "SUSPENDED"
    if rec.job_id is None:
        return "CREATED"
    if rec.job_state == "RUNNING":
        return "STABLE"
    return "DEPLOYED"
