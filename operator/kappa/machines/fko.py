"""Reading a FlinkDeployment's FKO status into what the machines judge, and the FKO configuration every
FlinkDeployment needs for that status to say what the machines ask. Pure.

FKO 1.10 reports no restart count, so restarts are counted here from observed transitions into RESTARTING or
FAILING, carried between observations in the StreamJob's status.

Checkpoints: FKO writes `status.jobStatus.checkpointInfo.lastCheckpoint` only for checkpoints that FKO itself
triggered through Flink's REST API, and only in its legacy snapshot mode; it never copies Flink's own periodic
checkpoints into status (see `FKO_CONFIGURATION`). So every FlinkDeployment carries `fko_configuration(...)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kappa.machines.runtime_facts import Deployment

RESTARTING_STATES = {"RESTARTING", "FAILING"}

PERIODIC_CHECKPOINT_INTERVAL = "kubernetes.operator.periodic.checkpoint.interval"
SNAPSHOT_RESOURCE_ENABLED = "kubernetes.operator.snapshot.resource.enabled"
MIN_CHECKPOINT_INTERVAL = timedelta(seconds=1)
MAX_CHECKPOINT_INTERVAL = timedelta(minutes=1)

FKO_CONFIGURATION = {SNAPSHOT_RESOURCE_ENABLED: "false", PERIODIC_CHECKPOINT_INTERVAL: "1 min"}
"""What FKO needs in a FlinkDeployment's flinkConfiguration before it reports any checkpoint in status.

Upstream (apache/flink-kubernetes-operator; the same in release-1.10.0 through release-1.15.0 and main):
- `CheckpointInfo.updateLastCheckpoint(...)` has one caller, `SnapshotObserver.observeTriggeredCheckpoint`
  (flink-kubernetes-operator/.../observer/SnapshotObserver.java:176-234). It runs only while
  `checkpointInfo.triggerId` is set (`SnapshotUtils.checkpointInProgress`), i.e. for a checkpoint that FKO
  triggered. `lastCheckpoint.timeStamp` is FKO's trigger time (`CheckpointInfo.setTrigger`), written once
  Flink reports that checkpoint COMPLETED.
- FKO triggers one in `AbstractJobReconciler.triggerSnapshotIfNeeded` (release-1.10.0: lines 448-539):
  PERIODIC when `kubernetes.operator.periodic.checkpoint.interval` (default "": never) has passed since the
  last trigger, MANUAL on a changed `spec.job.checkpointTriggerNonce`; only for a RUNNING job on Flink >= 1.17
  (`SnapshotUtils.shouldTriggerSnapshot`, `isSnapshotTriggeringSupported`).
- With `kubernetes.operator.snapshot.resource.enabled` (default **true**,
  KubernetesOperatorConfigOptions.java:328-337) that trigger creates a FlinkStateSnapshot resource instead
  (`FlinkStateSnapshotUtils.createCheckpointResource`) and checkpointInfo stays empty. Only `false` takes the
  legacy path through `checkpointInfo.setTrigger(...)`; it is a per-resource ("dynamic") option, which
  `FlinkStateSnapshotUtils.isSnapshotResourceEnabled` ANDs with the operator's own setting.
- Flink's own periodic checkpoints appear nowhere in status. `ClusterHealthInfo` in `status.clusterInfo`
  counts them only with `kubernetes.operator.cluster.health-check.enabled`, which also makes FKO restart jobs
  that it judges unhealthy: not something to switch on for a gate.

The interval here is only the default: `fko_configuration` keeps a user's own interval and scales the default
to the readiness timeout.

Only the Checkpointed gate needs those checkpoints: a version starting, resuming or rolled back to. A version
at rest stops asking (`upgrade.Quiet`): the key is set blank in its flinkConfiguration, which FKO takes
without redeploying the job, and FKO then triggers nothing more (apache/flink-kubernetes-operator,
release-1.10.0 through main):
- `AbstractFlinkSpec.flinkConfiguration` carries `@SpecDiff.Entry(prefix = "kubernetes.operator", type =
  DiffType.IGNORE)` (flink-kubernetes-operator-api/.../api/spec/AbstractFlinkSpec.java). A change of such keys
  only is an IGNORE diff: `AbstractFlinkResourceReconciler.reconcile` calls
  `ReconciliationUtils.updateReconciliationMetadata` (observedGeneration moves, lastReconciledSpec keeps the
  deployed spec) and goes on to `reconcileOtherChanges`, with no upgrade.
- `triggerSnapshotIfNeeded` reads the interval from `ctx.getObserveConfig()`, which is the deployed spec's
  configuration plus every `kubernetes.operator.*` key of the current spec (`FlinkConfigManager
  .getObserveConfig`, `addOperatorConfigsFromSpec`: "Observe config should include the latest operator related
  settings"). Blank, its default, triggers nothing (`SnapshotUtils.shouldTriggerAutomaticSnapshot`). Blank,
  not removed: a key the current spec leaves out keeps the deployed spec's value there.
Every FlinkDeployment the operator applies for a running job carries the interval again (`with_state` too).
Without this, 1,000 jobs at rest cost a checkpoint per job per minute in Flink and 33 FlinkDeployment status
writes a second, each a watch event for every client of the API server.
"""

_FLINK_DURATION = re.compile(r"\s*([0-9]+)\s*([^\s0-9]*)\s*")
_NANOS = {
    **dict.fromkeys(("d", "day", "days"), 86_400 * 10**9),
    **dict.fromkeys(("h", "hour", "hours"), 3_600 * 10**9),
    **dict.fromkeys(("min", "m", "minute", "minutes"), 60 * 10**9),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 10**9),
    **dict.fromkeys(("", "ms", "milli", "millis", "millisecond", "milliseconds"), 10**6),
    **dict.fromkeys(("µs", "micro", "micros", "microsecond", "microseconds"), 10**3),
    **dict.fromkeys(("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1),
}
"""Flink's `TimeUtils.TimeUnit` labels, singular and plural; a bare number is milliseconds."""


def flink_duration(text: str) -> timedelta | None:
    """A duration as Flink's `TimeUtils.parseDuration` reads it ("30 s", "1min", "500": milliseconds); None
    when it is not one (FKO then tries it as a Quartz cron expression)."""
    match = _FLINK_DURATION.fullmatch(text)
    nanos = _NANOS.get(match.group(2).lower()) if match else None
    if match is None or nanos is None:
        return None
    return timedelta(microseconds=int(match.group(1)) * nanos // 1000)


def _is_cron(text: str) -> bool:
    """Quartz cron, as FKO's `SnapshotUtils.interpretAsCron` would take it: 6 or 7 fields."""
    return len(text.split()) in (6, 7)


def checkpoint_interval(readiness_timeout: timedelta | None) -> str:
    """The default interval: a fifth of the readiness timeout, so that FKO triggers (and reports) a checkpoint
    well within it, between 1 s and 1 min (5 min readiness → "60 s")."""
    if readiness_timeout is None:
        return FKO_CONFIGURATION[PERIODIC_CHECKPOINT_INTERVAL]
    interval = min(max(readiness_timeout / 5, MIN_CHECKPOINT_INTERVAL), MAX_CHECKPOINT_INTERVAL)
    return f"{int(interval.total_seconds())} s"


def fko_configuration(
    flink_configuration: Mapping[str, str], readiness_timeout: timedelta | None = None
) -> dict[str, str]:
    """The FKO keys a FlinkDeployment gets so that FKO reports checkpoints (see `FKO_CONFIGURATION`). Merge it
    over the user's flinkConfiguration: legacy snapshots are forced on; a user's own periodic checkpoint
    interval (a positive duration or a cron expression) is kept."""
    own = own_checkpoint_interval(flink_configuration)
    return {
        SNAPSHOT_RESOURCE_ENABLED: "false",
        PERIODIC_CHECKPOINT_INTERVAL: own or checkpoint_interval(readiness_timeout),
    }


def own_checkpoint_interval(flink_configuration: Mapping[str, str]) -> str | None:
    """The user's own periodic checkpoint interval (a positive duration or a cron expression), which the
    operator keeps as it is, at rest too; None when the user set none that FKO would act on."""
    own = str(flink_configuration.get(PERIODIC_CHECKPOINT_INTERVAL) or "").strip()
    own_duration = flink_duration(own)
    keep = bool(own) and (own_duration > timedelta(0) if own_duration is not None else _is_cron(own))
    return own if keep else None


def asks_for_checkpoints(fd: Mapping[str, Any]) -> bool:
    """The FlinkDeployment asks FKO for periodic checkpoints: its interval is set (blank is FKO's "never")."""
    configuration = ((fd.get("spec") or {}).get("flinkConfiguration")) or {}
    return bool(str(configuration.get(PERIODIC_CHECKPOINT_INTERVAL) or "").strip())


def _ms(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC) if value not in (None, "", 0, "0") else None
    except (TypeError, ValueError):
        return None


def count_restarts(
    previous_count: int,
    previous_state: str | None,
    state: str | None,
    previous_update: str | None = None,
    update: str | None = None,
) -> int:
    """One more restart each time the job is newly seen restarting or failing, or when it is RUNNING before
    and after but FKO's jobStatus.updateTime moved: a whole restart happened between two looks."""
    if state in RESTARTING_STATES and previous_state not in RESTARTING_STATES:
        return previous_count + 1
    moved = previous_update is not None and update is not None and update != previous_update
    if moved and previous_state == state == "RUNNING":
        return previous_count + 1
    return previous_count


def job_update_time(fd: dict[str, Any] | None) -> str | None:
    value = (((fd or {}).get("status") or {}).get("jobStatus") or {}).get("updateTime")
    return str(value) if value not in (None, "") else None


def deployment_view(fd: dict[str, Any] | None, *, restarts: int = 0) -> Deployment:
    """`last_checkpoint_at` is `checkpointInfo.lastCheckpoint.timeStamp`: when FKO triggered the last
    checkpoint that completed, which FKO writes only with `fko_configuration` in the FlinkDeployment. It
    outlives a redeploy, so the Checkpointed gate compares it with this run's `startTime`."""
    if fd is None:
        return Deployment(exists=False)
    status = fd.get("status") or {}
    job = status.get("jobStatus") or {}
    savepoint = ((job.get("savepointInfo") or {}).get("lastSavepoint")) or {}
    checkpoint = ((job.get("checkpointInfo") or {}).get("lastCheckpoint")) or {}
    error = status.get("error") or None
    return Deployment(
        exists=True,
        desired_state=(fd.get("spec", {}).get("job", {}).get("state") or "running"),
        job_state=job.get("state"),
        lifecycle=status.get("lifecycleState"),
        upgrade_savepoint_path=job.get("upgradeSavepointPath") or savepoint.get("location") or None,
        savepoint_at=_ms(savepoint.get("timeStamp")),
        last_checkpoint_at=_ms(checkpoint.get("timeStamp")),
        started_at=_ms(job.get("startTime")),
        restarts=restarts,
        error=error,
        new_exceptions=1 if error and job.get("state") != "FINISHED" else 0,
        periodic_checkpoints=asks_for_checkpoints(fd),
    )


def deployment_facts(fd: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a StreamJob reads of its FlinkDeployment (`deployment_view`, `observed_generation_current`,
    `job_update_time`): a watch event that leaves these alone wakes nobody. FKO rewrites the whole status
    on every reconcile (reconciliationTimestamp, lastPeriodicCheckpointTimestamp, checkpoint triggers),
    most of which no decision reads."""
    meta = fd.get("metadata") or {}
    status = fd.get("status") or {}
    job = status.get("jobStatus") or {}
    return (
        meta.get("generation"),
        meta.get("deletionTimestamp"),
        ((fd.get("spec") or {}).get("job") or {}).get("state"),
        status.get("observedGeneration"),
        status.get("lifecycleState"),
        status.get("error"),
        job.get("state"),
        job.get("startTime"),
        job.get("updateTime"),
        job.get("upgradeSavepointPath"),
        repr((job.get("savepointInfo") or {}).get("lastSavepoint")),
        repr((job.get("checkpointInfo") or {}).get("lastCheckpoint")),  # last: see `only_checkpointed`
    )


def only_checkpointed(before: tuple[Any, ...] | None, after: tuple[Any, ...]) -> bool:
    """Of the facts, only `checkpointInfo.lastCheckpoint` moved: FKO's periodic checkpoint (the operator asks
    for one every fifth of readinessTimeout, for the Checkpointed gate). A job at rest, past its gates, has
    no use for it: waking it for each would be a look per job per minute."""
    return before is not None and before[:-1] == after[:-1] and before[-1] != after[-1]


def observed_generation_current(fd: dict[str, Any]) -> bool:
    """FKO has acted on the latest spec."""
    return bool(
        (fd.get("status") or {}).get("observedGeneration") == fd.get("metadata", {}).get("generation")
    )


def kafka_topic_ready(topic: dict[str, Any] | None) -> tuple[bool, str]:
    """Strimzi: ready only with Ready=True for the current generation."""
    if topic is None:
        return False, "KafkaTopic not created yet"
    status = topic.get("status") or {}
    generation = topic.get("metadata", {}).get("generation")
    if status.get("observedGeneration") != generation:
        return False, "the topic operator has not seen the latest spec"
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return False, "no Ready condition yet"
    if ready.get("status") != "True":
        return False, f"Ready=False, {ready.get('reason', 'NotReady')}: {ready.get('message', '')}"
    return True, "ready"
