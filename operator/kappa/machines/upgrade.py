"""The StreamJob savepoint upgrade machine's vocabulary: the part of status it owns (`UpgradeState`), what it
is given (`UpgradeSpec`, `Observed`), what it asks for (`Apply`, `Delete`) and returns (`UpgradeDecision`);
its state as status.upgrade records it (`from_status`); the readiness gates; and which version's output each
version continues.

The machine itself (steps, deadlines, `decide`) is in savepoint_upgrade.py; suspend/resume, manual rollback
and adoption of a replayed version in upgrade_requests.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from kappa.api.streamjob_status import StreamJobStatus, UpgradeStatus
from kappa.machines.decision import Decision
from kappa.machines.runtime_facts import RUNNING, Deployment, Gate

Step = Literal["Idle", "Savepointing", "Starting", "RollingBack", "RolledBack"]


@dataclass(frozen=True)
class Observed:
    deployments: dict[str, Deployment]
    lag_growing: bool = False

    def of(self, version: str | None) -> Deployment:
        return self.deployments.get(version or "", Deployment(exists=False))


@dataclass(frozen=True)
class UpgradeSpec:
    version: str
    readiness_timeout: timedelta
    savepoint_timeout: timedelta
    max_restarts: int
    stable_for: timedelta = timedelta(0)
    """How long every gate must hold without a break: one healthy moment between crashes is not ready."""
    suspend: bool = False
    rollback_requested: bool = False
    """A new kappa.dev/rollback request: go back to the previous version."""
    adopt: bool = False
    """`version` is already deployed by a ReplayRun that cut over to it (or back from it): switch to it as it
    is, with no savepoint upgrade, and keep the version it replaces suspended."""
    quiet_at_rest: bool = False
    """The versions ask their runtime for periodic checkpoints only for the Checkpointed gate (FKO, and no
    interval of the user's own): the active version stops asking once it is at rest (`Quiet`)."""


@dataclass(frozen=True)
class UpgradeState:
    """The part of StreamJob status this machine owns."""

    step: Step = "Idle"
    active: str | None = None
    target: str | None = None
    entered_at: datetime | None = None
    deadline: datetime | None = None
    savepoint: str | None = None
    """The savepoint the target starts from, and the one a rollback resumes the active version from."""
    failed_version: str | None = None
    """A version that failed its gates; not retried until spec.version changes to another version."""
    healthy_since: datetime | None = None
    """Since when every gate of the target has held, without a break."""
    previous: str | None = None
    """The version before the active one, kept suspended at `savepoint` for its rollback window."""
    overdue: bool = False
    """Said once, still asked for: at rest in Idle, a suspend, resume or adoption passed its deadline, or the
    suspend's savepoint failed; in RollingBack, the rolled-back-to version did not resume in time."""


@dataclass(frozen=True)
class Apply:
    """Server-side apply a version's FlinkDeployment in this state."""

    version: str
    state: Literal["running", "suspended"]
    initial_savepoint: str | None = None


@dataclass(frozen=True)
class Delete:
    version: str


@dataclass(frozen=True)
class Quiet:
    """The version, running at rest, stops asking its runtime for periodic checkpoints (machines/fko.py); any
    `Apply` of it in state running asks again."""

    version: str


Action = Apply | Delete | Quiet


UpgradeDecision = Decision[UpgradeState, Action]
"""What the savepoint upgrade machine returns (machines/decision.py)."""


def from_status(status: StreamJobStatus) -> UpgradeState:
    """The savepoint upgrade machine's state, as status.upgrade recorded it."""
    up = status.upgrade or UpgradeStatus(step="Idle")
    return UpgradeState(
        step=up.step,  # type: ignore[arg-type]
        active=status.active_version,
        target=up.to_version,
        entered_at=up.started_at,
        deadline=up.deadline,
        savepoint=up.savepoint,
        failed_version=up.failed_version,
        healthy_since=up.healthy_since,
        previous=up.previous_version,
        overdue=bool(up.overdue),
    )


def gates(dep: Deployment, spec: UpgradeSpec, lag_growing: bool) -> list[Gate]:
    """Healthy, not just RUNNING: a checkpoint since start, few restarts, no new exceptions, steady lag."""
    checkpointed = (
        dep.last_checkpoint_at is not None
        and dep.started_at is not None
        and dep.last_checkpoint_at > dep.started_at
    )
    return [
        Gate("Running", dep.job_state == RUNNING, f"job is {dep.job_state or 'not started'}"),
        Gate(
            "Checkpointed",
            checkpointed,
            "a checkpoint completed after the start"
            if checkpointed
            else "no checkpoint completed since the start",
        ),
        Gate(
            "Restarts",
            dep.restarts <= spec.max_restarts,
            f"{dep.restarts} restart(s), at most {spec.max_restarts}",
        ),
        Gate("NoNewExceptions", dep.new_exceptions == 0, f"{dep.new_exceptions} new exception(s)"),
        Gate("LagNotGrowing", not lag_growing, "lag is growing" if lag_growing else "lag is not growing"),
    ]


def quiet(version: str | None, seen: Observed, spec: UpgradeSpec) -> list[Action]:
    """`Quiet` for the version running at rest when it still asks for periodic checkpoints that no gate needs;
    nothing otherwise (a version whose gates are still judged keeps asking)."""
    dep = seen.of(version)
    running = dep.job_state == RUNNING and dep.desired_state == "running"
    return [Quiet(version)] if version and spec.quiet_at_rest and dep.periodic_checkpoints and running else []


def enter_step(
    state: UpgradeState, step: Step, now: datetime, timeout: timedelta | None, **changes: object
) -> UpgradeState:
    deadline = now + timeout if timeout is not None else None
    return UpgradeState(
        **{**state.__dict__, "step": step, "entered_at": now, "deadline": deadline, **changes}
    )


def expired(state: UpgradeState, now: datetime) -> bool:
    return state.deadline is not None and now >= state.deadline


def output_versions(
    recorded: dict[str, str], before_active: str | None, active: str | None, target: str | None
) -> dict[str, str]:
    """Which version's output each version writes. A savepoint upgrade (or a canary's promotion) continues
    its predecessor's output, so readers of it see one continuous result; a first deploy and a version
    adopted from a replay start their own. Recorded once per version, before it is deployed."""
    lineage = dict(recorded)
    if target and target not in lineage:
        lineage[target] = lineage.get(before_active, before_active) if before_active else target
    if active and active not in lineage:
        lineage[active] = active
    return lineage
