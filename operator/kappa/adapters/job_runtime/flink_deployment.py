"""The FKO runtime (`FlinkDeploymentRuntime`): each version's FlinkDeployment is applied server-side and FKO
runs, suspends and cancels its job; a savepoint no rollback needs is disposed of through a FlinkStateSnapshot
with `disposeOnDelete`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from kappa.adapters.job_runtime.seam import FD_API, Disposal
from kappa.adapters.kube import Kube, NotServed


class FlinkDeploymentRuntime:
    """FKO: FlinkDeployments applied server-side; deleting one (or its owner) makes FKO cancel its job."""

    name = "FlinkDeployment"
    asks_for_checkpoints = True

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
