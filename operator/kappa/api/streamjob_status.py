"""status of a StreamJob: its phase, the deployments of each version, savepoints, version history, the
upgrade and canary in progress (with their readiness gates), a ReplayRun's promotion, and which output each
version writes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kappa.api.base import CommonStatus, KappaModel, Time

StreamJobPhase = Literal[
    "Pending", "Deploying", "Running", "Upgrading", "Canary", "RollingBack", "Suspended", "Failed"
]


class VersionDeployment(KappaModel):
    version: str = Field(max_length=20)
    deployment: str = Field(max_length=253, description="FlinkDeployment name.")
    role: str = Field(default="active", max_length=16, description="active, target, previous or canary.")
    job_state: str | None = Field(default=None, max_length=32, description="FKO jobStatus.state.")
    lifecycle_state: str | None = Field(default=None, max_length=32, description="FKO lifecycleState.")
    restarts: int = Field(default=0, ge=0, description="Restarts observed since this version started.")
    job_update_time: str | None = Field(default=None, max_length=32, description="FKO jobStatus.updateTime.")
    retire_at: Time | None = Field(default=None, description="When a previous version is removed.")


class SavepointRecord(KappaModel):
    version: str = Field(max_length=20)
    path: str = Field(max_length=2048)
    taken_at: Time
    reason: str = Field(max_length=64, description="Upgrade, Suspend, Deletion, Final.")


class VersionHistoryEntry(KappaModel):
    version: str = Field(max_length=20)
    outcome: str = Field(max_length=32, description="Active, Superseded, RolledBack, Failed.")
    at: Time


class GateResult(KappaModel):
    name: str = Field(max_length=64)
    passed: bool
    message: str = Field(default="", max_length=1024)


class UpgradeStatus(KappaModel):
    step: str = Field(max_length=64)
    from_version: str | None = Field(default=None, max_length=20)
    to_version: str | None = Field(default=None, max_length=20)
    started_at: Time | None = None
    deadline: Time | None = None
    savepoint: str | None = Field(
        default=None, max_length=2048, description="Savepoint the target starts from."
    )
    healthy_since: Time | None = Field(default=None, description="Since when every gate has held.")
    previous_version: str | None = Field(
        default=None, max_length=20, description="Kept suspended at `savepoint` for kappa.dev/rollback."
    )
    failed_version: str | None = Field(
        default=None, max_length=20, description="Not retried until spec changes."
    )
    overdue: bool | None = Field(
        default=None, description="A suspend, resume or adoption passed its deadline; still asked for."
    )
    gates: list[GateResult] = Field(default_factory=list, max_length=32)


class CanaryStatus(KappaModel):
    step: str = Field(max_length=32)
    version: str | None = Field(default=None, max_length=20)
    started_at: Time | None = None
    deadline: Time | None = None
    extensions: int = Field(default=0, ge=0)
    result: str | None = Field(default=None, max_length=16)
    baseline: dict[str, int] | None = Field(
        default=None, description="End offsets (input, stable, canary) when the analysis started."
    )
    job_state: str | None = Field(default=None, max_length=32, description="The candidate's jobStatus.state.")
    job_update_time: str | None = Field(default=None, max_length=32, description="Its jobStatus.updateTime.")
    restarts: int = Field(default=0, ge=0, description="Restarts of the candidate seen during the analysis.")
    gates: list[GateResult] = Field(default_factory=list, max_length=32)


class PromotionRecord(KappaModel):
    """A version made live by a ReplayRun's cutover; spec.version still naming the version it replaced means
    "keep the replayed one" until the user moves spec.version on."""

    run: str = Field(max_length=253, description="The ReplayRun that cut over.")
    version: str = Field(max_length=20, description="The replayed version, now live.")
    from_version: str | None = Field(default=None, max_length=20, description="The version it replaced.")
    rolled_back: bool = Field(default=False, description="The run rolled back: from_version is live again.")
    retire_at: Time | None = Field(default=None, description="End of the run's rollback window.")


class ReplayUpgradeStatus(KappaModel):
    run: str = Field(max_length=253, description="The ReplayRun created for spec.version (strategy replay).")
    version: str = Field(max_length=20)
    phase: str | None = Field(default=None, max_length=32, description="Its phase, as last seen.")


class StreamJobStatus(CommonStatus):
    phase: StreamJobPhase | None = Field(default=None, description="Coarse state, for `kubectl get`.")
    active_version: str | None = Field(default=None, max_length=20, description="Version serving output.")
    stable_version: str | None = Field(default=None, max_length=20, description="Last version that passed.")
    consumer_group: str | None = Field(default=None, max_length=255, description="Active version's group.")
    lag: int | None = Field(default=None, ge=0, description="Total records the active version is behind.")
    deployments: list[VersionDeployment] = Field(default_factory=list, max_length=16)
    savepoints: list[SavepointRecord] = Field(default_factory=list, max_length=32)
    upgrade: UpgradeStatus | None = None
    canary: CanaryStatus | None = None
    history: list[VersionHistoryEntry] = Field(default_factory=list, max_length=64)
    promotion: PromotionRecord | None = None
    replay: ReplayUpgradeStatus | None = None
    runtime: str | None = Field(
        default=None,
        max_length=32,
        description="The runtime the job was deployed on (FlinkDeployment, Session).",
    )
    output_versions: dict[str, str] = Field(
        default_factory=dict,
        description="The version whose output each version writes: a savepoint upgrade keeps writing its "
        "predecessor's output; a first deploy or a replay starts a new one.",
    )
