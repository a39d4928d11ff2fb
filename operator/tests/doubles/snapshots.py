"""A double of FKO's FlinkStateSnapshot controller (FKO 1.10+), for savepoints only, as far as the operator
uses it: recording an existing savepoint and disposing of it on deletion.

As apache/flink-kubernetes-operator has it (FlinkStateSnapshotController, StateSnapshotReconciler):
- JOSDK adds the controller's finalizer `flinkstatesnapshots.flink.apache.org/finalizer` (the controller is a
  Cleaner) before the first reconcile;
- a savepoint with `spec.savepoint.alreadyExists` is marked COMPLETED with `status.path` at once
  (`FlinkStateSnapshotUtils.snapshotSuccessful`); triggering new savepoints is not modelled;
- on deletion, `cleanup`: with `disposeOnDelete` false, or state other than COMPLETED (IN_PROGRESS waits), the
  finalizer goes at once; a COMPLETED one is disposed of through the referenced FlinkDeployment's Flink REST
  API, which needs its job running (else "Cannot dispose of snapshot because referenced Flink job is not
  running!"): until then the finalizer stays and cleanup is retried.
Questions: `disposed(namespace)`, the savepoint paths disposed of, in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.doubles.double import Double
from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.kube_watch import Obj, Resource, api_client, key_of, replace_status

FLINK_STATE_SNAPSHOTS = Resource("flink.apache.org", "v1beta1", "flinkstatesnapshots", "FlinkStateSnapshot")
FINALIZER = "flinkstatesnapshots.flink.apache.org/finalizer"


class FakeSnapshotOperator(Double):
    resource = FLINK_STATE_SNAPSHOTS

    def __init__(
        self,
        kubeconfig: Path | str,
        fko: FakeFlinkOperator,
        *,
        namespaces: Iterable[str] | None = None,
        tick: float = 0.1,
    ) -> None:
        super().__init__(kubeconfig, namespaces=namespaces)
        self.fko = fko
        self.tick = tick
        self._disposed: list[tuple[str, str]] = []

    def disposed(self, namespace: str) -> list[str]:
        with self._lock:
            return [path for ns, path in self._disposed if ns == namespace]

    def _work(self) -> None:
        custom = client.CustomObjectsApi(api_client(self.kubeconfig))
        while not self._stopping.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            for key in [key_of(o) for o in self.watcher.snapshot()]:
                obj = self.watcher.get(key)
                if obj is None or not self.manages(key[0]) or self._stopping.is_set():
                    continue
                try:
                    self._reconcile(custom, obj)
                except Exception as e:
                    self._record_error(f"FlinkStateSnapshot {key[0]}/{key[1]}", e)

    def _reconcile(self, custom: client.CustomObjectsApi, obj: Obj) -> None:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        savepoint = spec.get("savepoint")
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            if FINALIZER not in finalizers:
                return
            state = (obj.get("status") or {}).get("state")
            if savepoint and savepoint.get("disposeOnDelete", True) and state == "COMPLETED":
                job = (spec.get("jobReference") or {}).get("name")
                if self.fko.state(meta["namespace"], job) != "RUNNING":
                    return  # FKO's cleanup throws; JOSDK retries after the reconcile interval
                path = (obj.get("status") or {}).get("path")
                if path:
                    with self._lock:
                        if (meta["namespace"], path) not in self._disposed:
                            self._disposed.append((meta["namespace"], path))
            self._finalizer(custom, obj, present=False)
            return
        if FINALIZER not in finalizers:
            self._finalizer(custom, obj, present=True)
            return  # the watch brings the object back with it
        if obj.get("status") or not savepoint:
            return
        if savepoint.get("alreadyExists"):
            status: dict[str, Any] = {
                "state": "COMPLETED",
                "path": savepoint.get("path"),
                "failures": 0,
                "error": None,
                "triggerTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "resultTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            replace_status(
                custom, FLINK_STATE_SNAPSHOTS, obj, {k: v for k, v in status.items() if v is not None}
            )

    def _finalizer(self, custom: client.CustomObjectsApi, obj: Obj, *, present: bool) -> None:
        meta = obj["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER] + (
            [FINALIZER] if present else []
        )
        r = FLINK_STATE_SNAPSHOTS
        try:
            custom.patch_namespaced_custom_object(
                r.group,
                r.version,
                meta["namespace"],
                r.plural,
                meta["name"],
                {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}},
                _content_type="application/merge-patch+json",
                _request_timeout=10,
            )
        except ApiException as e:
            if e.status not in (404, 409):
                raise

    def release(self, namespace: str) -> None:
        """Let go of the finalizers left in a namespace (a test's end: nothing would honour them)."""
        custom = client.CustomObjectsApi(api_client(self.kubeconfig))
        for cached in self.watcher.snapshot():
            if cached["metadata"]["namespace"] == namespace and FINALIZER in (
                cached["metadata"].get("finalizers") or []
            ):
                self._finalizer(custom, cached, present=False)
