"""What the machines observe of a job runtime: one version's deployment (read from FKO's FlinkDeployment
status by `fko.deployment_view`, or from a Flink session job in the same shape) and the readiness gates judged
on it. Pure facts, shared by the savepoint upgrade, the canary and the ReplayRun.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RUNNING = "RUNNING"


@dataclass(frozen=True)
class Deployment:
    """What was observed of one version's FlinkDeployment (FKO status)."""

    exists: bool = True
    desired_state: Literal["running", "suspended"] = "running"
    job_state: str | None = None
    lifecycle: str | None = None
    upgrade_savepoint_path: str | None = None
    savepoint_at: datetime | None = None
    last_checkpoint_at: datetime | None = None
    started_at: datetime | None = None
    restarts: int = 0
    error: str | None = None
    new_exceptions: int = 0
    periodic_checkpoints: bool = False
    """It asks its runtime for periodic checkpoints, for the Checkpointed gate (machines/fko.py)."""


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    message: str
