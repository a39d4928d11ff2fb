"""The session runtime (`SessionRuntime`): jobs on a Flink session cluster over its REST API, with the
operator as its own FKO. Each version's desired spec and the runtime's record (job id per attempt, stop
trigger, savepoint, last observation) live in a ConfigMap `{deployment}.flink-session` owned by the StreamJob,
read back in FlinkDeployment's shape; every look at a version takes one step of machines/session_job.py,
recording the step before the REST call (submit, stop with a savepoint, cancel) it asks for."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from kappa.adapters.flink_rest import FlinkRefused, FlinkRest, FlinkUnavailable
from kappa.adapters.job_runtime.seam import FD_API, Disposal, RuntimeUnavailable
from kappa.adapters.kube import ApiException, Kube
from kappa.machines import session_job
from kappa.machines.session_job import Desired, Record, Seen

RECORD_SUFFIX = ".flink-session"
RUNTIME_LABEL = "kappa.dev/runtime"
DEPLOYMENT_ANNOTATION = "kappa.dev/deployment"
FINALIZER = "kappa.dev/session-job"
"""On each record: a namespace being deleted removes ConfigMaps at once, and their jobs would run on."""
SQL_RUNNER_JAR_URI = "local:///opt/flink/usrlib/kappa-sql-runner.jar"

log = logging.getLogger(__name__)


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
    asks_for_checkpoints = False  # Flink's own, from GET /jobs/{id}/checkpoints

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
