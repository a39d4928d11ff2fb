"""A double of the Flink Kubernetes Operator 1.10: it drives FlinkDeployment status the way FKO does, with no
Flink behind it, and can be scripted per deployment ("crash-loops", "savepoint fails", ...).

What it writes, field for field as FKO 1.10's CRD and code have them (testbed/upstream-crds/NOTES.md):

- `reconciliationStatus.lastReconciledSpec` is FKO's JSON `{"spec": …, "resource_metadata": {"apiVersion",
  "firstDeployment"}}`, written with `observedGeneration` when a spec is reconciled; `state` is DEPLOYED, or
  UPGRADING between the savepoint and the redeploy of an upgrade (then the recorded job.state is `suspended`).
- `lifecycleState` is computed as FKO's `CommonStatus.getLifecycleState()` does: CREATED, UPGRADING,
  SUSPENDED, FAILED (only when jobStatus.state is FAILED, or an error before the first deploy), STABLE
  (lastStableSpec == lastReconciledSpec; FKO marks a spec stable as soon as the job is seen RUNNING, so
  `stable_after` defaults to 0), else DEPLOYED.
- `error` is FKO's FlinkResourceException JSON: `{"type", "message", "additionalMetadata"?, "throwableList"}`.
- Checkpoints: Flink checkpoints on its own every `checkpoint_interval` (counted in `checkpoints()`, used by
  last-state upgrades), and FKO never copies those into status. `checkpointInfo.lastCheckpoint` holds only
  checkpoints that FKO triggered itself, exactly when FKO does so (apache/flink-kubernetes-operator, the same
  in release-1.10.0 … release-1.15.0):
  - `AbstractJobReconciler.triggerSnapshotIfNeeded` (flink-kubernetes-operator/src/main/java/org/apache/flink/
    kubernetes/operator/reconciler/deployment/AbstractJobReconciler.java, release-1.10.0 lines 448-539)
    triggers a PERIODIC checkpoint when the job is RUNNING, none is in progress, the Flink version is 1.17 or
    newer (`SnapshotUtils.shouldTriggerSnapshot`, `isSnapshotTriggeringSupported`) and
    `kubernetes.operator.periodic.checkpoint.interval` has passed since the last trigger
    (`SnapshotTriggerTimestampStore`: in memory per uid, starting from max(creationTimestamp,
    lastPeriodicCheckpointTimestamp)). With `kubernetes.operator.snapshot.resource.enabled` (default true,
    ANDed over the operator's and the resource's configuration) it creates a FlinkStateSnapshot instead and
    status says nothing; the double does not create those (nothing of ours reads them).
  - Only with that option false does it call `checkpointInfo.setTrigger(triggerId, PERIODIC, FULL)`
    (`kubernetes.operator.checkpoint.type`, default FULL), and `SnapshotObserver.observeTriggeredCheckpoint`
    (the same tree's observer/SnapshotObserver.java, release-1.10.0 lines 176-234) turns a COMPLETED one
    into `lastCheckpoint {timeStamp: the trigger time, triggerType, formatType}` and
    `lastPeriodicCheckpointTimestamp` (flink-kubernetes-operator-api/.../api/status/CheckpointInfo.java,
    `updateLastCheckpoint`). A failed one, or one cut short by the job leaving RUNNING
    (`SnapshotUtils.resetSnapshotTriggers`), clears the trigger with a Warning `CheckpointError`, "Periodic
    checkpoint failed".
  The interval is read from FKO's observe config: the current spec's `kubernetes.operator.*` keys over the
  deployed spec's configuration, and a change of those keys only is no upgrade (DiffType.IGNORE).
  Not modelled: cron intervals, `checkpointTriggerNonce`, and FKO's reconcile cadence (real FKO looks at a
  triggered checkpoint again only at its next reconcile, `kubernetes.operator.reconcile.interval`, 60 s).
- Job state changes also raise FKO's Event: Normal `JobStatusChanged`, "Job status changed from X to Y".

Restarts: FKO 1.10 has no restart counter anywhere in status. A crash-looping job shows up only as
jobStatus.state flipping RUNNING → RESTARTING → RUNNING (and only if FKO happens to observe it in that state:
it polls Flink's REST API once per reconcile), an updated `jobStatus.updateTime`, and one `JobStatusChanged`
event per observed change. `error` is set only when the job ends FAILED (from Flink's job result). The
restart count itself lives in Flink (`GET /jobs/{id}`, metric `numRestarts`). The double writes exactly those
signals, with every transition observed, and keeps the count for tests in `restarts()`.

Deploy failures: FKO reports a JobManager that cannot start (CrashLoopBackOff, ImagePullBackOff, ...) as
jobManagerDeploymentStatus ERROR, jobStatus.state RECONCILING, a DeploymentFailedException in `error` and a
Warning event named after the reason. lifecycleState stays DEPLOYED: FKO says FAILED only for a FAILED job.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.doubles.double import Double
from tests.doubles.kube_watch import Key, Obj, Resource, api_client, key_of, replace_status

log = logging.getLogger(__name__)

FLINK_DEPLOYMENTS = Resource("flink.apache.org", "v1beta1", "flinkdeployments", "FlinkDeployment")

_EXCEPTIONS = "org.apache.flink.kubernetes.operator.exception"
PERIODIC_CHECKPOINT_INTERVAL = "kubernetes.operator.periodic.checkpoint.interval"
SNAPSHOT_RESOURCE_ENABLED = "kubernetes.operator.snapshot.resource.enabled"
OPERATOR_PREFIX = "kubernetes.operator"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _error_json(
    type_: str,
    message: str,
    *,
    metadata: dict[str, Any] | None = None,
    causes: Iterable[tuple[str, str]] = (),
) -> str:
    """FKO's FlinkResourceException as JSON (null fields left out, as its @JsonInclude(NON_NULL) does)."""
    error: dict[str, Any] = {"type": type_, "message": message}
    if metadata is not None:
        error["additionalMetadata"] = metadata
    error["throwableList"] = [{"type": t, "message": m} for t, m in causes]
    return json.dumps(error, separators=(",", ":"))


@dataclass
class Script:
    """What a test has asked of one deployment. Every field can change at any time; the double reacts."""

    crash_loop: bool = False
    crash_every: float = 1.0
    """Seconds of RUNNING between two failures."""
    restart_delay: float = 0.3
    """Seconds in RESTARTING (or FAILING) before the next state."""
    fail_after: int | None = None
    """With crash_loop: after this many restarts the next failure is terminal (FAILING → FAILED), as when
    Flink's restart strategy gives up."""
    never_checkpoint: bool = False
    savepoint_fails: bool = False
    deploy_fails: bool = False
    deploy_failure_reason: str = "CrashLoopBackOff"
    start_delay: float | None = None
    """Seconds from deploy to RUNNING; None: the double's default."""


@dataclass
class _Deployment:
    """One FlinkDeployment (one uid) as FKO would know it, plus the history tests ask about."""

    namespace: str
    name: str
    uid: str
    # What FKO keeps in status.
    job_state: str | None = None
    job_id: str | None = None
    start_time_ms: int | None = None
    update_time_ms: int | None = None
    jm_status: str = "MISSING"
    error: str | None = None
    reconciled_spec: dict[str, Any] | None = None
    reconciled_json: str | None = None
    stable_json: str | None = None
    reconciliation_state: str = "UPGRADING"
    reconciliation_ms: int = 0
    observed_generation: int | None = None
    operator_configuration: dict[str, str] = field(default_factory=dict)
    """The current spec's `kubernetes.operator.*` keys, which FKO's observe config takes from it."""
    ignored_generation: int | None = None
    """The generation whose spec differed from the deployed one only where FKO ignores changes."""
    first_deployment: bool = True
    upgrade_savepoint_path: str | None = None
    savepoint_history: list[dict[str, Any]] = field(default_factory=list)
    last_checkpoint: dict[str, Any] | None = None
    checkpoint_trigger: dict[str, Any] | None = None
    """FKO's pending trigger: {triggerId, triggerTimestamp, triggerType, formatType}."""
    last_periodic_checkpoint_ms: int = 0
    created_ms: int = 0
    task_managers: int = 0
    # The simulated job.
    deploying: bool = False
    pending_restore: str | None = None
    ready_at: float = 0.0
    running_since: float | None = None
    next_checkpoint_at: float = 0.0
    last_periodic_trigger_ms: int | None = None
    """FKO's SnapshotTriggerTimestampStore, which lives in memory."""
    checkpoint_done_at: float = 0.0
    next_crash_at: float | None = None
    transition_at: float = 0.0
    failure_reported: bool = False
    savepoint_failure_reported: int | None = None
    last_state_checkpoint: str | None = None
    # History for tests.
    restarts: int = 0
    restored_from: str | None = None
    runs: list[str | None] = field(default_factory=list)
    savepoints: list[str] = field(default_factory=list)
    checkpoints: int = 0
    written: dict[str, Any] | None = None
    gone: bool = False


class FakeFlinkOperator(Double):
    """Watches `flinkdeployments.flink.apache.org/v1beta1` and writes their status as FKO 1.10 would.

    Per spec change: `job.state: running` deploys (after `start_delay`: jobManagerDeploymentStatus READY,
    jobStatus RUNNING, then STABLE); `suspended` with `upgradeMode: savepoint` stops with a savepoint
    (FINISHED, SUSPENDED, `upgradeSavepointPath`); back to `running` restores from it. Any other change to a
    running job is an upgrade: savepoint (per upgradeMode), then redeploy from it. `initialSavepointPath` is
    used on the first deploy only, or with a changed `savepointRedeployNonce`, as in FKO.

    Scripts (by deployment name, optionally limited to one namespace; `reset()` clears them all):
    `crash_loop`, `never_checkpoint`, `savepoint_fails`, `deploy_fails`, `start_delay`.
    Questions: `status`, `state`, `lifecycle`, `restored_from`, `runs`, `savepoints`, `restarts`,
    `checkpoints`.
    """

    resource = FLINK_DEPLOYMENTS

    def __init__(
        self,
        kubeconfig: Path | str,
        *,
        namespaces: Iterable[str] | None = None,
        start_delay: float = 0.3,
        stable_after: float = 0.0,
        checkpoint_interval: float = 0.5,
        checkpoint_duration: float = 0.1,
        checkpoint_timeout: float = 2.0,
        operator_configuration: dict[str, str] | None = None,
        tick: float = 0.05,
        events: bool = True,
        parallelism: int = 1,
    ) -> None:
        """`checkpoint_interval`: Flink's own checkpointing; `checkpoint_duration`: how long a checkpoint that
        FKO triggers takes; `checkpoint_timeout`: when such a checkpoint of a job that never checkpoints fails
        (Flink's execution.checkpointing.timeout); `operator_configuration`: FKO's own defaults, under each
        resource's flinkConfiguration; `parallelism`: deployments reconciled at once, each by one thread at a
        time, as FKO's `kubernetes.operator.reconcile.parallelism` (JOSDK's reconcile pool, 50 threads by
        default: KubernetesOperatorConfigOptions.OPERATOR_RECONCILE_PARALLELISM); 1, one after another, keeps
        the tests' order, and the scale benchmark raises it so that 1,000 savepoints do not queue behind one
        thread."""
        super().__init__(kubeconfig, namespaces=namespaces)
        self.default_start_delay = start_delay
        self.stable_after = stable_after
        self.checkpoint_interval = checkpoint_interval
        self.checkpoint_duration = checkpoint_duration
        self.checkpoint_timeout = checkpoint_timeout
        self.operator_configuration = dict(operator_configuration or {})
        self.tick = tick
        self.events = events
        self.parallelism = max(1, parallelism)
        self._deployments: dict[Key, _Deployment] = {}
        self._scripts: dict[tuple[str | None, str], Script] = {}

    # --- scripts -----------------------------------------------------------------------------------------

    def crash_loop(
        self,
        name: str,
        enabled: bool = True,
        *,
        namespace: str | None = None,
        every: float = 1.0,
        restart_delay: float = 0.3,
        fail_after: int | None = None,
    ) -> None:
        """The job fails every `every` seconds of running and restarts (RUNNING → RESTARTING → RUNNING)."""
        self._script(
            name,
            namespace,
            crash_loop=enabled,
            crash_every=every,
            restart_delay=restart_delay,
            fail_after=fail_after,
        )

    def never_checkpoint(self, name: str, enabled: bool = True, *, namespace: str | None = None) -> None:
        self._script(name, namespace, never_checkpoint=enabled)

    def savepoint_fails(self, name: str, enabled: bool = True, *, namespace: str | None = None) -> None:
        """Stop-with-savepoint fails: the job keeps RUNNING, `error` says "Savepoint Error", no path."""
        self._script(name, namespace, savepoint_fails=enabled)

    def deploy_fails(
        self,
        name: str,
        enabled: bool = True,
        *,
        namespace: str | None = None,
        reason: str = "CrashLoopBackOff",
    ) -> None:
        """The JobManager never becomes ready; clearing it lets a pending deploy go on to RUNNING."""
        self._script(name, namespace, deploy_fails=enabled, deploy_failure_reason=reason)

    def start_delay(self, name: str, seconds: float, *, namespace: str | None = None) -> None:
        """Seconds from deploy to RUNNING for this deployment (JobManager start-up and job submit)."""
        self._script(name, namespace, start_delay=seconds)

    def reset(self) -> None:
        """Forget every script (between tests)."""
        with self._lock:
            self._scripts.clear()
        self._wake.set()

    def _script(self, name: str, namespace: str | None, **changes: Any) -> None:
        with self._lock:
            current = self._scripts.get((namespace, name), Script())
            self._scripts[(namespace, name)] = replace(current, **changes)
        self._wake.set()

    def _script_for(self, namespace: str, name: str) -> Script:
        with self._lock:
            return self._scripts.get((namespace, name)) or self._scripts.get((None, name)) or Script()

    # --- questions ---------------------------------------------------------------------------------------

    def _get(self, namespace: str, name: str) -> _Deployment | None:
        with self._lock:
            return self._deployments.get((namespace, name))

    def status(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The status as last written to the API server."""
        with self._lock:
            d = self._deployments.get((namespace, name))
            return deepcopy(d.written) if d and d.written else None

    def state(self, namespace: str, name: str) -> str | None:
        """jobStatus.state, as last written."""
        return ((self.status(namespace, name) or {}).get("jobStatus") or {}).get("state")

    def lifecycle(self, namespace: str, name: str) -> str | None:
        return (self.status(namespace, name) or {}).get("lifecycleState")

    def restored_from(self, namespace: str, name: str) -> str | None:
        """The savepoint (or checkpoint) the current run started from; None for a run without state."""
        with self._lock:
            d = self._deployments.get((namespace, name))
            return d.restored_from if d else None

    def runs(self, namespace: str, name: str) -> list[str | None]:
        """Where each run of this deployment started from, oldest first."""
        with self._lock:
            d = self._deployments.get((namespace, name))
            return list(d.runs) if d else []

    def savepoints(self, namespace: str, name: str) -> list[str]:
        with self._lock:
            d = self._deployments.get((namespace, name))
            return list(d.savepoints) if d else []

    def restarts(self, namespace: str, name: str) -> int:
        """Restarts of the current run (Flink's numRestarts: a new deploy starts again from 0)."""
        with self._lock:
            d = self._deployments.get((namespace, name))
            return d.restarts if d else 0

    def checkpoints(self, namespace: str, name: str) -> int:
        """Checkpoints completed over the deployment's life."""
        with self._lock:
            d = self._deployments.get((namespace, name))
            return d.checkpoints if d else 0

    # --- the worker --------------------------------------------------------------------------------------

    def _work(self) -> None:
        local = threading.local()

        def clients() -> tuple[client.CustomObjectsApi, client.CoreV1Api]:
            if not hasattr(local, "apis"):
                apis = api_client(self.kubeconfig)
                local.apis = client.CustomObjectsApi(apis), client.CoreV1Api(apis)
            return local.apis  # type: ignore[no-any-return]

        def send(obj: Obj, *decided: Any) -> None:
            try:
                self._send(*clients(), obj, *decided)
            except Exception as e:
                self._record_error(f"FlinkDeployment {key_of(obj)[0]}/{key_of(obj)[1]}", e)

        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="fko") as pool:
            while not self._stopping.is_set():
                self._wake.wait(self.tick)
                self._wake.clear()
                sending = []
                for key in [key_of(o) for o in self.watcher.snapshot()]:
                    namespace, name = key
                    # The newest version, not the snapshot's: a slow pass must not act on a deleted object.
                    obj = self.watcher.get(key)
                    if self._stopping.is_set():
                        break
                    if obj is None or not self.manages(namespace):
                        continue
                    try:
                        decided = self._decide(obj)
                    except Exception as e:
                        self._record_error(f"FlinkDeployment {namespace}/{name}", e)
                        continue
                    if decided is None or (decided[1] == decided[0].written and not decided[2]):
                        continue  # nothing to write: no thread handed anything
                    if self.parallelism == 1:
                        send(obj, *decided)
                    else:
                        sending.append(pool.submit(send, obj, *decided))
                # One pass at a time: a deployment's writes end before its next reconcile.
                for future in sending:
                    future.result()

    def _reconcile(self, custom: client.CustomObjectsApi, core: client.CoreV1Api, obj: Obj) -> None:
        decided = self._decide(obj)
        if decided is not None:
            self._send(custom, core, obj, *decided)

    def _decide(self, obj: Obj) -> tuple[_Deployment, dict[str, Any], list[tuple[str, str, str, str]]] | None:
        """One reconcile's state changes, under the lock: the deployment, its status, the events it raised."""
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with self._lock:
            d = self._deployments.get(key)
            if d is None or d.uid != meta["uid"]:
                d = self._deployments[key] = _Deployment(
                    meta["namespace"],
                    meta["name"],
                    meta["uid"],
                    created_ms=_k8s_ms(meta["creationTimestamp"]),
                )
            if d.gone:
                return None
            script = self._script_for(*key)
            emitted: list[tuple[str, str, str, str]] = []
            now = time.monotonic()
            self._reconcile_spec(d, obj, script, now, emitted)
            self._observe(d, obj, script, now, emitted)
            self._observe_triggered_checkpoint(d, script, now, emitted)
            self._trigger_checkpoint_if_needed(d, script, now)
            return d, self._status(d), emitted

    def _send(
        self,
        custom: client.CustomObjectsApi,
        core: client.CoreV1Api,
        obj: Obj,
        d: _Deployment,
        status: dict[str, Any],
        emitted: list[tuple[str, str, str, str]],
    ) -> None:
        """What one reconcile writes: its status, when it changed, and its events."""
        if status != d.written:
            self._write(custom, d, obj, status)
        for event in emitted:
            self._event(core, obj, *event)

    # --- spec changes: FKO's AbstractJobReconciler in miniature -----------------------------------------

    def _reconcile_spec(
        self, d: _Deployment, obj: Obj, script: Script, now: float, emitted: list[tuple[str, str, str, str]]
    ) -> None:
        spec: dict[str, Any] = obj.get("spec") or {}
        job: dict[str, Any] = spec.get("job") or {}
        desired = job.get("state", "running")
        d.operator_configuration = _operator_keys(spec)
        if d.reconciled_spec is None:
            self._record(d, obj, spec)
            if desired == "running":
                self._deploy(d, obj, script, now, job.get("initialSavepointPath"), emitted)
            return
        if d.reconciliation_state == "DEPLOYED" and (
            d.reconciled_spec == spec or d.ignored_generation == obj["metadata"].get("generation")
        ):
            return
        if d.reconciliation_state == "DEPLOYED" and _without_ignored(d.reconciled_spec) == _without_ignored(
            spec
        ):
            # DiffType.IGNORE (AbstractFlinkSpec.flinkConfiguration: `@SpecDiff.Entry(prefix =
            # "kubernetes.operator", type = DiffType.IGNORE)`): AbstractFlinkResourceReconciler.reconcile
            # calls ReconciliationUtils.updateReconciliationMetadata, which moves observedGeneration and keeps
            # the deployed spec in lastReconciledSpec; no upgrade.
            d.observed_generation = d.ignored_generation = obj["metadata"].get("generation")
            return
        last_job: dict[str, Any] = d.reconciled_spec.get("job") or {}
        current = last_job.get("state", "running")
        if job.get("savepointRedeployNonce") != last_job.get("savepointRedeployNonce"):
            # DiffType.SAVEPOINT_REDEPLOY: throw the current state away, start from initialSavepointPath.
            self._stop_job(d, emitted)
            self._record(d, obj, spec)
            if desired == "running":
                self._deploy(d, obj, script, now, job.get("initialSavepointPath"), emitted)
            return
        if current == "running":
            mode = job.get("upgradeMode", "stateless")
            if not self._suspend(d, obj, script, mode, emitted):
                return  # waiting for the job to run, or the savepoint failed: FKO retries later
            if desired == "running":
                # Recorded as suspended and UPGRADING; the next pass deploys it, as FKO's next reconcile does.
                self._record(d, obj, spec, job_state="suspended", upgrading=True)
            else:
                self._record(d, obj, spec)
            return
        if current == "suspended" and desired == "running":
            # The upgrade mode the job was suspended with decides the state it resumes from, unless the new
            # spec asks for stateless.
            mode = (
                "stateless"
                if job.get("upgradeMode") == "stateless"
                else last_job.get("upgradeMode", "stateless")
            )
            restore = None
            if mode == "savepoint":
                last = d.savepoint_history[-1]["location"] if d.savepoint_history else None
                restore = last or d.upgrade_savepoint_path
            elif mode == "last-state":
                restore = d.last_state_checkpoint
            # restoreJob: the target spec is recorded as UPGRADING before the deploy, DEPLOYED after it.
            self._record(d, obj, spec, job_state="suspended", upgrading=True)
            self._record(d, obj, spec)
            self._deploy(d, obj, script, now, restore, emitted)
            return
        self._record(d, obj, spec)

    def _record(
        self,
        d: _Deployment,
        obj: Obj,
        spec: dict[str, Any],
        *,
        job_state: str | None = None,
        upgrading: bool = False,
    ) -> None:
        """ReconciliationUtils.updateStatusForSpecReconciliation: lastReconciledSpec and observedGeneration
        set, error cleared; a spec suspended by the user counts as stable at once."""
        recorded = deepcopy(spec)
        if job_state is not None:
            recorded.setdefault("job", {})["state"] = job_state
        # ReconciliationMetadata.from: still the first deployment until a reconcile goes through UPGRADING.
        first = d.reconciled_spec is None or (d.first_deployment and d.reconciliation_state == "DEPLOYED")
        d.first_deployment = first
        d.reconciled_spec = recorded
        d.reconciled_json = json.dumps(
            {
                "spec": recorded,
                "resource_metadata": {"apiVersion": FLINK_DEPLOYMENTS.api_version, "firstDeployment": first},
            },
            separators=(",", ":"),
        )
        d.observed_generation = obj["metadata"].get("generation")
        d.reconciliation_state = "UPGRADING" if upgrading else "DEPLOYED"
        d.reconciliation_ms = _now_ms()
        d.error = None
        if (spec.get("job") or {}).get("state") == "suspended":
            d.stable_json = d.reconciled_json

    def _deploy(
        self,
        d: _Deployment,
        obj: Obj,
        script: Script,
        now: float,
        restore: str | None,
        emitted: list[tuple[str, str, str, str]],
    ) -> None:
        spec = obj.get("spec") or {}
        d.deploying = True
        d.pending_restore = restore
        d.job_id = uuid.uuid4().hex
        d.jm_status = "DEPLOYING"
        d.start_time_ms = None
        d.running_since = None
        d.next_crash_at = None
        d.failure_reported = False
        d.restarts = 0
        d.ready_at = now + (
            script.start_delay if script.start_delay is not None else self.default_start_delay
        )
        d.task_managers = _task_managers(spec)
        self._set_job_state(d, "RECONCILING", emitted, quiet=True)
        emitted.append(("Normal", "Submit", "Starting deployment", "JobManagerDeployment"))

    def _suspend(
        self, d: _Deployment, obj: Obj, script: Script, mode: str, emitted: list[tuple[str, str, str, str]]
    ) -> bool:
        """Stop the running job as `mode` says; False when FKO would not (yet) go ahead."""
        broken = d.job_state == "FAILED" or d.jm_status == "ERROR"
        if mode != "stateless" and not broken:
            if d.job_state != "RUNNING":
                return False  # FKO: no upgrade mode available until the job runs
            if mode == "savepoint":
                if script.savepoint_fails:
                    generation = obj["metadata"].get("generation")
                    if d.savepoint_failure_reported != generation:
                        d.savepoint_failure_reported = generation
                        d.error = _error_json(
                            f"{_EXCEPTIONS}.UpgradeFailureException",
                            "Savepoint Error",
                            causes=[
                                (
                                    "java.util.concurrent.ExecutionException",
                                    "org.apache.flink.runtime.checkpoint.CheckpointException: "
                                    "Checkpoint expired before completing.",
                                ),
                                (
                                    "org.apache.flink.runtime.checkpoint.CheckpointException",
                                    "Checkpoint expired before completing.",
                                ),
                            ],
                        )
                        emitted.append(("Warning", "SavepointError", "Savepoint Error", "Job"))
                    return False
                self._take_savepoint(d)
            elif mode == "last-state":
                d.last_state_checkpoint = self._checkpoint_path(d)
        d.savepoint_failure_reported = None
        emitted.append(("Normal", "Suspended", "Suspending existing deployment.", "JobManagerDeployment"))
        self._stop_job(d, emitted)
        return True

    def _take_savepoint(self, d: _Deployment) -> str:
        path = f"file:///savepoints/{d.namespace}/{d.name}/savepoint-{len(d.savepoints) + 1}"
        d.savepoints.append(path)
        d.savepoint_history.append(
            {"location": path, "timeStamp": _now_ms(), "triggerType": "UPGRADE", "formatType": "CANONICAL"}
        )
        d.upgrade_savepoint_path = path
        return path

    def _checkpoint_path(self, d: _Deployment) -> str | None:
        if not d.checkpoints:
            return None
        return f"file:///checkpoints/{d.namespace}/{d.name}/{d.job_id}/chk-{d.checkpoints}"

    def _stop_job(self, d: _Deployment, emitted: list[tuple[str, str, str, str]]) -> None:
        """The job is gone and its cluster deleted: FINISHED, JobManager MISSING, as FKO's cancelJob leaves
        it."""
        d.deploying = False
        d.running_since = None
        d.next_crash_at = None
        d.jm_status = "MISSING"
        d.task_managers = 0
        if d.job_state is not None:
            self._set_job_state(d, "FINISHED", emitted)

    # --- time passing: what FKO's observer would see ----------------------------------------------------

    def _observe(
        self, d: _Deployment, obj: Obj, script: Script, now: float, emitted: list[tuple[str, str, str, str]]
    ) -> None:
        if d.deploying:
            if script.deploy_fails:
                if not d.failure_reported:
                    d.failure_reported = True
                    d.jm_status = "ERROR"
                    self._set_job_state(d, "RECONCILING", emitted, quiet=True)
                    message = (
                        f"back-off 10s restarting failed container=flink-main-container "
                        f"pod={d.name}-{d.job_id[:10] if d.job_id else 'x'}-jm_{d.namespace}"
                    )
                    d.error = _error_json(
                        f"{_EXCEPTIONS}.DeploymentFailedException",
                        message,
                        metadata={"reason": script.deploy_failure_reason},
                    )
                    emitted.append(("Warning", script.deploy_failure_reason, message, "JobManagerDeployment"))
                return
            if now < d.ready_at:
                return
            d.deploying = False
            d.failure_reported = False
            d.error = None
            d.jm_status = "READY"
            d.start_time_ms = _now_ms()
            d.restored_from = d.pending_restore
            d.runs.append(d.pending_restore)
            self._enter_running(d, now, emitted)
        if d.job_state == "RUNNING":
            if (
                d.stable_json != d.reconciled_json
                and d.reconciliation_state == "DEPLOYED"
                and d.running_since is not None
                and now - d.running_since >= self.stable_after
            ):
                d.stable_json = d.reconciled_json
            if not script.never_checkpoint and now >= d.next_checkpoint_at:
                d.checkpoints += 1
                d.next_checkpoint_at = now + self.checkpoint_interval
            if script.crash_loop:
                if d.next_crash_at is None:
                    d.next_crash_at = now + script.crash_every
                elif now >= d.next_crash_at:
                    terminal = script.fail_after is not None and d.restarts >= script.fail_after
                    if not terminal:
                        d.restarts += 1
                    self._set_job_state(d, "FAILING" if terminal else "RESTARTING", emitted)
                    d.transition_at = now + script.restart_delay
            else:
                d.next_crash_at = None
        elif d.job_state == "RESTARTING" and now >= d.transition_at:
            self._enter_running(d, now, emitted)
        elif d.job_state == "FAILING" and now >= d.transition_at:
            self._set_job_state(d, "FAILED", emitted)
            # FKO copies the job result's SerializedThrowable, whose message is the original's toString().
            reason = (
                "Recovery is suppressed by FixedDelayRestartBackoffTimeStrategy"
                f"(maxNumberRestartAttempts={d.restarts}, backoffTimeMS=1000)"
            )
            d.error = _error_json(
                "org.apache.flink.util.SerializedThrowable",
                f"org.apache.flink.runtime.JobException: {reason}",
                causes=[
                    (
                        "org.apache.flink.util.SerializedThrowable",
                        "java.lang.RuntimeException: scripted crash loop",
                    )
                ],
            )

    # --- checkpoints FKO triggers (see the module docstring) ---------------------------------------------

    def _observe_configuration(self, d: _Deployment) -> dict[str, str]:
        """FKO's observe config (FlinkConfigManager.getObserveConfig): its own defaults under the last
        reconciled spec's flinkConfiguration, then the current spec's `kubernetes.operator.*` keys over it
        (addOperatorConfigsFromSpec: "Observe config should include the latest operator related settings");
        a key the current spec leaves out keeps the deployed value."""
        own = ((d.reconciled_spec or {}).get("flinkConfiguration")) or {}
        return {
            **self.operator_configuration,
            **{str(k): str(v) for k, v in own.items()},
            **d.operator_configuration,
        }

    def _observe_triggered_checkpoint(
        self, d: _Deployment, script: Script, now: float, emitted: list[tuple[str, str, str, str]]
    ) -> None:
        """SnapshotObserver.observeTriggeredCheckpoint, and SnapshotUtils.resetSnapshotTriggers for a job that
        stopped running under it."""
        trigger = d.checkpoint_trigger
        if trigger is None:
            return
        if d.job_state == "RUNNING" and not d.deploying:  # else resetSnapshotTriggers
            if now < d.checkpoint_done_at:
                return  # "Checkpoint operation not finished yet..."
            if not script.never_checkpoint:
                d.checkpoints += 1
                d.last_checkpoint = {
                    "timeStamp": trigger["triggerTimestamp"],
                    "triggerType": trigger["triggerType"],
                    "formatType": trigger["formatType"],
                }
                if trigger["triggerType"] == "PERIODIC":
                    d.last_periodic_checkpoint_ms = trigger["triggerTimestamp"]
                d.checkpoint_trigger = None
                return
        d.checkpoint_trigger = None
        emitted.append(("Warning", "CheckpointError", "Periodic checkpoint failed", "Operator"))

    def _trigger_checkpoint_if_needed(self, d: _Deployment, script: Script, now: float) -> None:
        """AbstractJobReconciler.triggerSnapshotIfNeeded(CHECKPOINT), PERIODIC only."""
        if d.job_state != "RUNNING" or d.deploying or d.reconciliation_state != "DEPLOYED":
            return
        if d.checkpoint_trigger is not None:
            return
        conf = self._observe_configuration(d)
        interval = _flink_duration_ms(conf.get(PERIODIC_CHECKPOINT_INTERVAL, ""))
        if not interval:
            return  # unset, zero, or a cron expression (not modelled)
        version = _flink_version((d.reconciled_spec or {}).get("flinkVersion"))
        if version is None or version < (1, 17):
            return  # "Automatic checkpoints triggering is configured but is not supported (requires 1.17+)"
        if d.last_periodic_trigger_ms is None:
            d.last_periodic_trigger_ms = max(d.created_ms, d.last_periodic_checkpoint_ms)
        now_ms = _now_ms()
        if not d.last_periodic_trigger_ms + interval < now_ms:
            return
        d.last_periodic_trigger_ms = now_ms
        if _flag(self.operator_configuration, SNAPSHOT_RESOURCE_ENABLED) and _flag(
            conf, SNAPSHOT_RESOURCE_ENABLED
        ):
            return  # FKO would create a FlinkStateSnapshot resource; checkpointInfo stays as it is
        d.checkpoint_trigger = {
            "triggerId": uuid.uuid4().hex,
            # Flink's start-time comes before FKO sees the job RUNNING, so a trigger is always later.
            "triggerTimestamp": max(now_ms, (d.start_time_ms or 0) + 1),
            "triggerType": "PERIODIC",
            "formatType": conf.get("kubernetes.operator.checkpoint.type", "FULL").upper(),
        }
        d.checkpoint_done_at = now + (
            self.checkpoint_timeout if script.never_checkpoint else self.checkpoint_duration
        )

    def _enter_running(self, d: _Deployment, now: float, emitted: list[tuple[str, str, str, str]]) -> None:
        self._set_job_state(d, "RUNNING", emitted)
        if d.running_since is None:
            d.running_since = now
        d.next_checkpoint_at = now + self.checkpoint_interval
        d.next_crash_at = None

    def _set_job_state(
        self, d: _Deployment, state: str, emitted: list[tuple[str, str, str, str]], *, quiet: bool = False
    ) -> None:
        """JobStatusObserver.updateJobStatus: a changed state gets a new updateTime and a JobStatusChanged
        event."""
        previous = d.job_state
        if previous == state:
            return
        d.job_state = state
        d.update_time_ms = _now_ms()
        if quiet:
            return
        message = (
            f"Job status changed to {state}"
            if previous is None
            else f"Job status changed from {previous} to {state}"
        )
        emitted.append(("Normal", "JobStatusChanged", message, "Job"))

    # --- writing -----------------------------------------------------------------------------------------

    def _status(self, d: _Deployment) -> dict[str, Any]:
        job_status: dict[str, Any] = {
            "state": d.job_state,
            "jobId": d.job_id,
            "jobName": d.name if d.job_id else None,
            "startTime": str(d.start_time_ms) if d.start_time_ms else None,
            "updateTime": str(d.update_time_ms) if d.update_time_ms else None,
            "upgradeSavepointPath": d.upgrade_savepoint_path,
            "savepointInfo": {
                "lastSavepoint": d.savepoint_history[-1] if d.savepoint_history else None,
                "savepointHistory": list(d.savepoint_history),
                "lastPeriodicSavepointTimestamp": 0,
            },
            "checkpointInfo": {
                "lastCheckpoint": d.last_checkpoint,
                **(d.checkpoint_trigger or {}),
                "lastPeriodicCheckpointTimestamp": d.last_periodic_checkpoint_ms,
            },
        }
        status: dict[str, Any] = {
            "jobStatus": job_status,
            "error": d.error,
            "observedGeneration": d.observed_generation,
            "lifecycleState": _lifecycle(d),
            "jobManagerDeploymentStatus": d.jm_status,
            "reconciliationStatus": {
                "reconciliationTimestamp": d.reconciliation_ms,
                "lastReconciledSpec": d.reconciled_json,
                "lastStableSpec": d.stable_json,
                "state": d.reconciliation_state,
            },
            "taskManager": {
                "labelSelector": f"component=taskmanager,app={d.name}" if d.task_managers else "",
                "replicas": d.task_managers,
            },
        }
        cleaned: dict[str, Any] = _without_nones(status)
        return cleaned

    def _write(
        self, custom: client.CustomObjectsApi, d: _Deployment, obj: Obj, status: dict[str, Any]
    ) -> None:
        """Replace the whole status, as FKO's StatusRecorder does."""
        try:
            written = replace_status(custom, FLINK_DEPLOYMENTS, obj, status)
        finally:
            with self._lock:
                d.written = status  # even when refused: retrying the same status every tick helps nobody
        if not written:
            with self._lock:
                d.gone = True  # deleted (or replaced) under us: the watch brings the news

    def _event(
        self, core: client.CoreV1Api, obj: Obj, type_: str, reason: str, message: str, component: str
    ) -> None:
        """Best effort, like FKO's EventRecorder: a failed event never fails a reconcile."""
        if not self.events:
            return
        meta = obj["metadata"]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Any = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": FLINK_DEPLOYMENTS.api_version,
                "kind": FLINK_DEPLOYMENTS.kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "reportingComponent": "flink-kubernetes-operator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            core.create_namespaced_event(meta["namespace"], body, _request_timeout=10)
        except ApiException as e:
            log.debug(
                "event %s for %s/%s not recorded: %s", reason, meta["namespace"], meta["name"], e.reason
            )


def _k8s_ms(stamp: str) -> int:
    """A metadata timestamp ("2026-05-07T09:49:27Z") in epoch milliseconds."""
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


_DURATION = re.compile(r"\s*([0-9]+)\s*([^\s0-9]*)\s*")
_DURATION_MS = {
    **dict.fromkeys(("d", "day", "days"), 86_400_000.0),
    **dict.fromkeys(("h", "hour", "hours"), 3_600_000.0),
    **dict.fromkeys(("min", "m", "minute", "minutes"), 60_000.0),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1_000.0),
    **dict.fromkeys(("", "ms", "milli", "millis", "millisecond", "milliseconds"), 1.0),
    **dict.fromkeys(("µs", "micro", "micros", "microsecond", "microseconds"), 1e-3),
    **dict.fromkeys(("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1e-6),
}


def _operator_keys(spec: dict[str, Any]) -> dict[str, str]:
    return {
        str(k): str(v)
        for k, v in (spec.get("flinkConfiguration") or {}).items()
        if str(k).startswith(OPERATOR_PREFIX)
    }


def _without_ignored(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The spec as FKO's ReflectiveDiffBuilder compares it, less the `kubernetes.operator.*` keys of
    flinkConfiguration (DiffType.IGNORE). FKO ignores more (job.autoscaler.*, parallelism.default, the
    snapshot trigger nonces); nothing here changes those."""
    compared = deepcopy(spec or {})
    configuration = compared.get("flinkConfiguration") or {}
    compared["flinkConfiguration"] = {
        k: v for k, v in configuration.items() if not str(k).startswith(OPERATOR_PREFIX)
    }
    return compared


def _flink_duration_ms(text: str) -> float | None:
    """Flink's TimeUtils.parseDuration (which FKO's SnapshotUtils.interpretAsInterval uses): a number and an
    optional unit, milliseconds without one. None when it is not a duration."""
    match = _DURATION.fullmatch(text)
    unit = _DURATION_MS.get(match.group(2).lower()) if match else None
    return int(match.group(1)) * unit if match and unit is not None else None


def _flink_version(value: Any) -> tuple[int, int] | None:
    """spec.flinkVersion ("v1_20") as FlinkVersion's (major, minor)."""
    match = re.fullmatch(r"v(\d+)_(\d+)", str(value or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _flag(conf: dict[str, str], key: str) -> bool:
    """A boolean option as Flink reads it, with FKO's default of true for the ones asked here."""
    return str(conf.get(key, "true")).strip().lower() != "false"


def _lifecycle(d: _Deployment) -> str:
    """FKO's CommonStatus.getLifecycleState(), over the same fields."""
    if d.reconciled_json is None:
        return "FAILED" if d.error else "CREATED"
    if d.reconciliation_state in ("UPGRADING", "ROLLING_BACK"):
        return d.reconciliation_state
    reconciled = json.loads(d.reconciled_json)["spec"]
    if (reconciled.get("job") or {}).get("state") == "suspended":
        return "SUSPENDED"
    if d.job_state == "FAILED":
        return "FAILED"
    if d.stable_json is not None and d.stable_json == d.reconciled_json:
        return "STABLE"
    return "DEPLOYED"


def _task_managers(spec: dict[str, Any]) -> int:
    """FlinkUtils.getNumTaskManagers: explicit replicas, else parallelism over task slots."""
    replicas = (spec.get("taskManager") or {}).get("replicas")
    if replicas:
        return int(replicas)
    parallelism = int((spec.get("job") or {}).get("parallelism") or 1)
    slots = int((spec.get("flinkConfiguration") or {}).get("taskmanager.numberOfTaskSlots", 1))
    return max(1, math.ceil(parallelism / max(1, slots)))


def _without_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value
