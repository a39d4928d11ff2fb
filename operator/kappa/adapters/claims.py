"""Who holds a MaterializedView: one `coordination.k8s.io/v1` Lease per view, named `{view}.view-claim`.

Taking it is atomic on the API server, so two ReplayRuns created in the same `kubectl apply` cannot both hold
the view: the first create wins and the other one gets 409 AlreadyExists. A claim left by a run that has ended
(or is gone) is handed over with a replace that carries the Lease's resourceVersion, a compare-and-swap: of
two runs taking over together, one gets 409 Conflict. The holder is `{run name}/{run uid}`, so a run deleted
and created again under its name does not inherit its predecessor's claim. The Lease is owned by the run
holding it: deleting the run frees the view. No lease duration is used: a claim ends with its run, not with
time, because a replay can take days.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from kappa.adapters.kube import ApiException, Kube
from kappa.api.base import API_VERSION
from kappa.render import names

LEASE_API = "coordination.k8s.io/v1"
Stale = Callable[[str, str], Awaitable[bool]]
"""(holder name, holder uid) → True when that run no longer holds anything: gone, recreated, or ended."""


class ViewClaims:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def claim(self, namespace: str, view: str, run: dict[str, Any], stale: Stale) -> str | None:
        """Take the view for `run`, or keep it. None: `run` holds it; otherwise the holder's name."""
        meta = run["metadata"]
        name = names.view_claim(view)
        for _ in range(3):  # each lost race means someone else moved: look again
            current = await self.kube.get(LEASE_API, "Lease", namespace, name)
            if current is None:
                if await self._try(self.kube.create, _lease(namespace, name, view, meta)):
                    return None
                continue
            holder_name, _, holder_uid = str(
                (current.get("spec") or {}).get("holderIdentity") or ""
            ).partition("/")
            if holder_uid == meta["uid"]:
                return None
            if not await stale(holder_name, holder_uid):
                return holder_name or "another ReplayRun"
            takeover = _lease(namespace, name, view, meta, transitions=_transitions(current) + 1)
            takeover["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if await self._try(self.kube.replace, takeover):
                return None
        return "another ReplayRun"

    @staticmethod
    async def _try(call: Callable[[dict[str, Any]], Awaitable[object]], body: dict[str, Any]) -> bool:
        try:
            await call(body)
        except ApiException as exc:
            if exc.status == 409:  # AlreadyExists or Conflict: lost the race
                return False
            raise
        return True


def _transitions(lease: dict[str, Any]) -> int:
    return int((lease.get("spec") or {}).get("leaseTransitions") or 0)


def _lease(
    namespace: str, name: str, view: str, run: dict[str, Any], *, transitions: int = 0
) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": LEASE_API,
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "kappa-operator"},
            "annotations": {"kappa.dev/view": view},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ReplayRun",
                    "name": run["name"],
                    "uid": run["uid"],
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "holderIdentity": f"{run['name']}/{run['uid']}",
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        },
    }
