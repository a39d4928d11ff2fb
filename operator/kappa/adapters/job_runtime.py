"""Where a version's Flink job runs: the one seam between the machines and a stream processor.

The seam is declarative, as FKO's own is. The machines say which state each version's job should be in
(`running` or `suspended`, optionally from a savepoint), rendered as a FlinkDeployment spec; a runtime carries
that out and reports back in FlinkDeployment's shape (FKO's `status.jobStatus`, `lifecycleState`, `error`), so
that machines/fko.py reads both the same way and no machine knows which runtime ran the job. Behind it, each
runtime turns the desired state into the imperative operations of its platform: deploy (from a savepoint),
suspend with a savepoint and resume, observe state, restarts, exceptions and the last checkpoint, cancel, and
dispose of a savepoint.

- FlinkDeploymentRuntime: server-side applies the FlinkDeployment; FKO does the rest.
- SessionRuntime: a Flink session cluster over its REST API. The operator is its own FKO here: each version's
  desired spec and the runtime's record (job id per attempt, stop trigger, savepoint, last observation) live
  in a ConfigMap `{deployment}.flink-session` owned by the StreamJob, and every look at a version takes one
  step of machines/session_job.py, recording the step before the REST call it asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from kappa.adapters.flink_rest import FlinkRefused, FlinkRest, FlinkUnavailable
from kappa.adapters.kube import ApiException, Kube, NotServed
from kappa.machines import session_job
from kappa.machines.session_job import Desired, Record, Seen

FD_API = "flink.apache.org/v1beta1"
RECORD_SUFFIX = ".flink-session"
RUNTIME_LABEL = "kappa.dev/runtime"
DEPLOYMENT_ANNOTATION = "kappa.dev/deployment"
FINALIZER = "kappa.dev/session-job"
"""On each record: a namespace being deleted removes ConfigMaps at once, and their jobs would run on."""
SQL_RUNNER_JAR_URI = "local:///opt/flink/usrlib/kappa-sql-runner.jar"

Disposal = Literal["disposed", "pending", "unsupported"]

log = logging.getLogger(__name__)


class RuntimeUnavailable(Exception):
    """The runtime's platform cannot be reached: an outage, reported as one."""


class JobRuntime(Protocol):
    """Each version's job, as FlinkDeployment-shaped objects: `spec.job.state` is the desired state, `status`
    what the runtime observed, in FKO's fields."""

    name: str

    async def select(self, namespace: str, job: str) -> list[dict[str, Any]]:
        """Every version's deployment of a StreamJob (label kappa.dev/job)."""
        ...

    async def get(self, namespace: str, deployment: str) -> dict[str, Any] | None: ...

    async def apply(self, deployment: dict[str, Any]) -> None:
        """Make the rendered FlinkDeployment the desired state of its version; idempotent."""
        ...

    async def delete(self, namespace: str, deployment: str) -> bool:
        """Stop the version's job (no savepoint) and forget it; False when it was already gone."""
        ...

    async def release(self, namespace: str, job: str, *, abandon: bool = False) -> list[str]:
        """The StreamJob is going: stop whatever still runs that the garbage collector would not stop.
        `abandon`: the runtime is unreachable and the deletion will not wait any longer; let go anyway and
        return the ids of the jobs that may still run there, for someone to cancel."""
        ...

    async def dispose_savepoint(self, namespace: str, deployment: str, path: str) -> Disposal:
        """Dispose of a savepoint no rollback needs any more, through `deployment` (one that runs, in the
        StreamJob's namespace). Idempotent: "pending" asks to be called again later; "disposed" once it
        is done or irrevocably handed over; "unsupported" when this runtime cannot dispose of savepoints."""
        ...


class FlinkDeploymentRuntime:
    """FKO: FlinkDeployments applied server-side; deleting one (or its owner) makes FKO cancel its job."""

    name = "FlinkDeployment"

    def __init__(self, kube: Kube, cached: Callable[[str, str], list[dict[str, Any]]] | None = None) -> None:
        self.kube = kube
        self.cached = cached
        """A watch-fed index of the job's deployments (controllers/watches.py); None: a LIST per call."""

    async def select(self, namespace: str, job: str) -> list[dict[str, Any]]:
        if self.cached is None:
            return await self.kube.select(FD_API, "FlinkDeployment", namespace, f"kappa.dev/job={job}")
        # An empty index is no FKO only if the kind is not served (asked of the discovery cache, not the
        # API server); otherwise the job has no deployment yet.
        if not await self.kube.served(FD_API, "FlinkDeployment"):
            raise NotServed(f"FlinkDeployment ({FD_API}) is not served by this cluster")
        return self.cached(namespace, job)

    async def get(self, namespace: str, deployment: str) -> dict[str, Any] | None:
        return await self.kube.get(FD_API, "FlinkDeployment", namespace, deployment)

    async def apply(self, deployment: dict[str, Any]) -> None:
        await self.kube.apply(deployment)

    async def delete(self, namespace: str, deployment: str) -> bool:
        return await self.kube.delete(FD_API, "FlinkDeployment", namespace, deployment)

    async def release(self, namespace: str, job: str, *, abandon: bool = False) -> list[str]:
        return []  # owned by the StreamJob: the garbage collector deletes them, and FKO cancels the jobs

    async def dispose_savepoint(self, namespace: str, deployment: str, path: str) -> Disposal:
        """FKO disposes of a savepoint when a FlinkStateSnapshot with `disposeOnDelete` that it completed is
        deleted, through the referenced deployment's Flink REST API (its finalizer stays until that worked,
        and it needs the referenced job running): apply one naming the path (`alreadyExists`: FKO marks it
        COMPLETED at once), then, once COMPLETED, delete it (StateSnapshotReconciler.cleanup, FKO 1.10+).
        FKO without FlinkStateSnapshot (or with snapshot resources disabled) cannot: "unsupported"."""
        name = _disposal_name(path)
        try:
            found = await self.kube.get(FD_API, "FlinkStateSnapshot", namespace, name)
        except NotServed:
            return "unsupported"
        if found is not None and found["metadata"].get("deletionTimestamp"):
            return "disposed"  # FKO's finalizer holds it until the savepoint is disposed of
        reference = ((found or {}).get("spec") or {}).get("jobReference") or {}
        if found is None or reference.get("name") != deployment:
            # New, or through a deployment that has stopped running since: through this one.
            await self.kube.apply(
                {
                    "apiVersion": FD_API,
                    "kind": "FlinkStateSnapshot",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": {
                            "app.kubernetes.io/managed-by": "kappa-operator",
                            "kappa.dev/savepoint": "dispose",
                        },
                    },
                    "spec": {
                        "jobReference": {"kind": "FlinkDeployment", "name": deployment},
                        "savepoint": {"path": path, "alreadyExists": True, "disposeOnDelete": True},
                    },
                }
            )
            return "pending"
        fd = await self.get(namespace, deployment)
        running = (((fd or {}).get("status") or {}).get("jobStatus") or {}).get("state") == "RUNNING"
        state = (found.get("status") or {}).get("state")
        if state == "COMPLETED" and running:  # FKO disposes through the referenced job's cluster
            await self.kube.delete(FD_API, "FlinkStateSnapshot", namespace, name)
            return "disposed"
        if state in ("FAILED", "ABANDONED"):
            return "unsupported"
        return "pending"  # FKO has not reconciled it yet


def _disposal_name(path: str) -> str:
    """One FlinkStateSnapshot per savepoint to dispose of, whichever deployment it goes through."""
    return "kappa-dispose-" + hashlib.sha256(path.encode()).hexdigest()[:16]


def _record_name(deployment: str) -> str:
    return deployment + RECORD_SUFFIX


def _record_of(cm: dict[str, Any]) -> Record:
    raw = json.loads(((cm.get("data") or {}).get("record")) or "{}")
    known = Record.__dataclass_fields__
    return Record(**{k: v for k, v in raw.items() if k in known})


def _desired(spec: dict[str, Any]) -> Desired:
    job = spec.get("job") or {}
    return Desired(
        state="suspended" if job.get("state") == "suspended" else "running",
        initial_savepoint=job.get("initialSavepointPath"),
        nonce=job.get("savepointRedeployNonce"),
    )


def _ms(value: int | None) -> str | None:
    return str(value) if value else None  # FKO writes epoch millis as strings


def _as_deployment(cm: dict[str, Any]) -> dict[str, Any]:
    """The record in FlinkDeployment's shape, with FKO's status fields filled from what Flink reported."""
    meta = cm["metadata"]
    spec = json.loads((cm.get("data") or {}).get("spec") or "{}")
    rec = _record_of(cm)
    desired = _desired(spec)
    job_status: dict[str, Any] = {
        "jobId": rec.job_id,
        "state": rec.job_state,
        "startTime": _ms(rec.start_time_ms),
        "updateTime": _ms(rec.update_time_ms),
        "upgradeSavepointPath": rec.savepoint_path,
        "savepointInfo": {"lastSavepoint": {"location": rec.savepoint_path, "timeStamp": rec.savepoint_ms}}
        if rec.savepoint_path
        else {},
        # Flink's own last completed checkpoint, read from GET /jobs/{id}/checkpoints.
        "checkpointInfo": {"lastCheckpoint": {"timeStamp": rec.last_checkpoint_ms}}
        if rec.last_checkpoint_ms
        else {},
    }
    error = json.dumps({"type": "FlinkJobError", "message": rec.error}) if rec.error else None
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != RUNTIME_LABEL}
    return {
        "apiVersion": FD_API,
        "kind": "FlinkDeployment",
        "metadata": {
            "name": (meta.get("annotations") or {}).get(DEPLOYMENT_ANNOTATION)
            or meta["name"].removesuffix(RECORD_SUFFIX),
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "labels": labels,
            "ownerReferences": meta.get("ownerReferences") or [],
        },
        "spec": spec,
        "status": {
            "lifecycleState": session_job.lifecycle(rec, desired),
            "jobStatus": {k: v for k, v in job_status.items() if v not in (None, {})},
            "error": error,
        },
    }


def _may_run(rec: Record) -> bool:
    """The record's job may still run on the cluster: live, or submitted with no answer seen yet."""
    return bool(rec.job_id) and rec.job_state in session_job.LIVE_STATES | {None, "RECONCILING"}


class SessionRuntime:
    """A Flink session cluster over REST. SQL jobs run the SQL runner jar (uploaded once); jar jobs name a
    local jar file (`file:///…` or a path). Job ids are chosen per attempt and recorded before each submit."""

    name = "Session"

    def __init__(
        self,
        kube: Kube,
        rest: FlinkRest,
        *,
        runner_jar: Path | None,
        savepoint_dir: str | None = None,
    ) -> None:
        self.kube = kube
        self.rest = rest
        self.runner_jar = runner_jar
        self.savepoint_dir = savepoint_dir
        self._down: str | None = None  # the outage being reported, so it is logged once

    # -- the JobRuntime protocol ------------------------------------------------------------------------

    async def select(self, namespace: str, job: str) -> list[dict[str, Any]]:
        found = await self.kube.select(
            "v1", "ConfigMap", namespace, f"kappa.dev/job={job},{RUNTIME_LABEL}=session"
        )
        return [_as_deployment(await self._sync(cm)) for cm in found]

    async def get(self, namespace: str, deployment: str) -> dict[str, Any] | None:
        cm = await self.kube.get("v1", "ConfigMap", namespace, _record_name(deployment))
        return _as_deployment(await self._sync(cm)) if cm else None

    async def apply(self, deployment: dict[str, Any]) -> None:
        meta = deployment["metadata"]
        name = _record_name(meta["name"])
        spec = json.dumps(deployment["spec"], sort_keys=True)
        labels = {**meta.get("labels", {}), RUNTIME_LABEL: "session"}
        for _ in range(5):
            cm = await self.kube.get("v1", "ConfigMap", meta["namespace"], name)
            if cm is None:
                body = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": name,
                        "namespace": meta["namespace"],
                        "labels": labels,
                        "annotations": {DEPLOYMENT_ANNOTATION: meta["name"]},
                        "ownerReferences": meta.get("ownerReferences") or [],
                        "finalizers": [FINALIZER],
                    },
                    "data": {"spec": spec, "record": "{}"},
                }
                try:
                    cm = await self.kube.create(body)
                except ApiException as exc:
                    if exc.status == 409:
                        continue
                    raise
            elif (cm.get("data") or {}).get("spec") != spec or (cm["metadata"].get("labels") or {}) != labels:
                cm["data"] = {**(cm.get("data") or {}), "spec": spec}
                cm["metadata"]["labels"] = labels
                try:
                    cm = await self.kube.replace(_clean(cm))
                except ApiException as exc:
                    if exc.status == 409:
                        continue
                    raise
            await self._sync(cm)  # act on the new desired state now, not at the next look
            return

    async def delete(self, namespace: str, deployment: str) -> bool:
        cm = await self.kube.get("v1", "ConfigMap", namespace, _record_name(deployment))
        if cm is None:
            return False
        await self._forget(cm)
        await self.kube.delete("v1", "ConfigMap", namespace, _record_name(deployment))
        return True

    async def release(self, namespace: str, job: str, *, abandon: bool = False) -> list[str]:
        found = await self.kube.select(
            "v1", "ConfigMap", namespace, f"kappa.dev/job={job},{RUNTIME_LABEL}=session"
        )
        left: list[str] = []
        for cm in found:
            try:
                await self._forget(cm)
            except RuntimeUnavailable:
                if not abandon:
                    raise
                # The record goes all the same (its finalizer would otherwise hold it, and the namespace,
                # forever); the job id it names is reported instead.
                rec = _record_of(cm)
                if _may_run(rec):
                    left.append(str(rec.job_id))
                await self._forget(cm, cancel=False)
        return left

    async def dispose_savepoint(self, namespace: str, deployment: str, path: str) -> Disposal:
        await self._guard(self.rest.dispose_savepoint(path))  # any session cluster's JobManager can
        return "disposed"

    # -- one step of machines/session_job.py per look ----------------------------------------------------

    async def _forget(self, cm: dict[str, Any], *, cancel: bool = True) -> None:
        """Cancel the record's job if it still runs, then let the record go (its finalizer)."""
        rec = _record_of(cm)
        if cancel and rec.job_id and _may_run(rec):
            await self._guard(self.rest.cancel(rec.job_id))
        finalizers = cm["metadata"].get("finalizers") or []
        if FINALIZER in finalizers:
            cm["metadata"]["finalizers"] = [f for f in finalizers if f != FINALIZER]
            try:
                await self.kube.replace(_clean(cm))
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
                if exc.status == 409:  # changed meanwhile: again, from what is there now
                    fresh = await self.kube.get(
                        "v1", "ConfigMap", cm["metadata"]["namespace"], cm["metadata"]["name"]
                    )
                    if fresh is not None:
                        await self._forget(fresh, cancel=cancel)

    async def _guard(self, call: Any) -> Any:
        """An unreachable cluster is an outage: logged once when it starts and once when it ends."""
        try:
            result = await call
        except FlinkUnavailable as exc:
            if self._down is None:
                log.warning("%s", exc)
            self._down = str(exc)
            raise RuntimeUnavailable(str(exc)) from exc
        if self._down is not None:
            log.info("Flink REST API at %s answers again", self.rest.url)
            self._down = None
        return result

    async def _observe(self, rec: Record) -> Seen:
        job = await self._guard(self.rest.job(rec.job_id)) if rec.job_id else None
        trigger = None
        if rec.stop_trigger and rec.stopping_job:
            trigger = await self._guard(self.rest.savepoint_status(rec.stopping_job, rec.stop_trigger))
        return Seen(job=job, trigger=trigger)

    async def _sync(self, cm: dict[str, Any]) -> dict[str, Any]:
        spec = json.loads((cm.get("data") or {}).get("spec") or "{}")
        rec = _record_of(cm)
        seen = await self._observe(rec)
        nxt, action = session_job.step(
            _desired(spec), rec, seen, cm["metadata"]["uid"], int(time.time() * 1000)
        )
        if nxt != rec:
            cm["data"] = {**(cm.get("data") or {}), "record": json.dumps(nxt.__dict__, sort_keys=True)}
            try:
                cm = await self.kube.replace(_clean(cm))  # intent first; a conflict means another look won
            except ApiException as exc:
                if exc.status == 409:
                    return cm
                raise
        if action is not None:
            error = await self._act(action, spec)
            if error:
                failed = session_job.Record(**{**nxt.__dict__, "job_state": "FAILED", "error": error})
                cm["data"] = {**cm["data"], "record": json.dumps(failed.__dict__, sort_keys=True)}
                try:
                    cm = await self.kube.replace(_clean(cm))
                except ApiException as exc:
                    if exc.status != 409:
                        raise
        return cm

    async def _act(self, action: session_job.Action, spec: dict[str, Any]) -> str | None:
        """Carry out one REST action; a refused submit is returned as the job's error (FKO's `error`)."""
        if isinstance(action, session_job.Submit):
            try:
                await self._guard(self._submit(action, spec))
            except FlinkRefused as exc:
                if "already been submitted" in str(exc) or "Duplicate" in str(exc):
                    return None  # the same attempt (the same job id) arrived before: nothing to do
                log.warning("submitting job %s refused: %s", action.job_id, exc)
                return str(exc)
            log.info(
                "submitted job %s%s", action.job_id, f" from {action.savepoint}" if action.savepoint else ""
            )
        elif isinstance(action, session_job.Stop):
            try:
                await self._guard(
                    self.rest.stop_with_savepoint(action.job_id, action.trigger_id, self.savepoint_dir)
                )
            except FlinkRefused as exc:
                log.warning("stop with savepoint of job %s refused: %s", action.job_id, exc)
        else:
            await self._guard(self.rest.cancel(action.job_id))
        return None

    async def _submit(self, action: session_job.Submit, spec: dict[str, Any]) -> str:
        job = spec.get("job") or {}
        jar_uri = str(job.get("jarURI") or "")
        if jar_uri == SQL_RUNNER_JAR_URI:
            if self.runner_jar is None:
                raise FlinkRefused(
                    "the operator has no SQL runner jar for the session runtime (--sql-runner-jar)"
                )
            jar = self.runner_jar
        else:
            jar = Path(jar_uri.removeprefix("file://").removeprefix("local://"))
        if not jar.is_file():
            raise FlinkRefused(f"spec.flink.jarURI: {jar} is not a file the operator can upload")
        jar_id = await self.rest.jar_id(jar)
        configuration = {str(k): str(v) for k, v in (spec.get("flinkConfiguration") or {}).items()}
        return await self.rest.run_jar(
            jar_id,
            job_id=action.job_id,
            args=[str(a) for a in job.get("args") or []],
            entry_class=job.get("entryClass"),
            parallelism=job.get("parallelism"),
            savepoint=action.savepoint,
            allow_non_restored_state=bool(job.get("allowNonRestoredState", False)),
            configuration=configuration,
        )


def _clean(cm: dict[str, Any]) -> dict[str, Any]:
    """What a replace sends: metadata without the server's bookkeeping, but with the resourceVersion (CAS)."""
    meta = {
        k: v
        for k, v in cm["metadata"].items()
        if k
        in (
            "name",
            "namespace",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "resourceVersion",
            "uid",
        )
        and v is not None
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": cm.get("data") or {}}
