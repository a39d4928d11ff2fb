"""StreamJob and ReplayRuns: the job's runs as observed (a run's cutover or rollback decides which version is
live, machines/promotion.py), and the ReplayRun that strategy replay creates for spec.version (the step itself
is decided in machines/streamjob.py)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import kopf
from pydantic import ValidationError

from kappa.adapters.kube import Kube
from kappa.api.base import API_VERSION, duration
from kappa.api.replayrun import ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.status import ts
from kappa.controllers.watches import copies
from kappa.machines.promotion import RunSeen
from kappa.render.flink import owner_reference

REPLAYING = ("Preflight", "Replaying", "CatchingUp", "Validating", "AwaitingApproval", "CuttingOver")


async def runs_of(
    kube: Kube, index: kopf.Index[Hashable, Any] | None, namespace: str, name: str
) -> dict[str, tuple[str, ReplayRunSpec, RunSeen]]:
    """This job's ReplayRuns by version: their specs render adopted deployments exactly as they ran."""
    found: dict[str, tuple[str, ReplayRunSpec, RunSeen]] = {}
    if index is not None:
        listed = copies(index, (namespace, name))
    else:
        listed = await kube.select(API_VERSION, "ReplayRun", namespace, "")
    for r in listed:
        if (r.get("spec") or {}).get("jobRef", {}).get("name") != name:
            continue
        try:
            run = ReplayRunSpec.model_validate(r["spec"])
        except ValidationError:
            continue
        st = ReplayRunStatus.of(r)
        cut = st.cutover
        at = cut.at if cut else None
        window = duration(run.rollback_window)
        seen = RunSeen(
            r["metadata"]["name"],
            st.phase or "Pending",
            (cut.replaced_version or cut.from_version) if cut else None,
            (cut.to_version if cut else None) or run.version,
            at,
            at + window if at else None,
        )
        found[run.version] = (r["metadata"]["name"], run, seen)
    return found


def replay_run_for(namespace: str, job: str, job_uid: str, run: str, spec: StreamJobSpec) -> dict[str, Any]:
    """The ReplayRun that strategy replay creates for spec.version: from the job's own starting position
    (earliest unless a timestamp is given), approved automatically, with the upgrade's window."""
    start = spec.source.starting_position
    begin: dict[str, Any] = {"timestamp": ts(start.timestamp)} if start.timestamp else {"earliest": True}
    return {
        "apiVersion": API_VERSION,
        "kind": "ReplayRun",
        "metadata": {
            "name": run,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "kappa-operator", "kappa.dev/job": job},
            "ownerReferences": [owner_reference("StreamJob", job, job_uid)],
        },
        "spec": {
            "jobRef": {"name": job},
            "version": spec.version,
            "from": begin,
            "approval": "Automatic",
            "rollbackWindow": spec.upgrade.rollback_window,
            "catchUp": {"stableFor": spec.upgrade.stable_for},
        },
    }
