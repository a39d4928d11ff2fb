"""StreamJob and ReplayRuns: strategy replay creates a run for spec.version, and a run's cutover (or rollback)
decides which version is live (machines/promotion.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kappa.api.base import API_VERSION, duration
from kappa.api.conditions import progressing, stalled
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.status import dt, once, ts
from kappa.controllers.streamjob_base import StreamJobBase
from kappa.controllers.watches import copies
from kappa.machines.decision import Event
from kappa.machines.promotion import RunSeen
from kappa.render.flink import owner_reference

REPLAYING = ("Preflight", "Replaying", "CatchingUp", "Validating", "AwaitingApproval", "CuttingOver")


class ReplayUpgrade(StreamJobBase):
    async def _replay_upgrade(
        self,
        obj: dict[str, Any],
        job: StreamJobSpec,
        status: dict[str, Any],
        runs: dict[str, tuple[str, ReplayRunSpec, RunSeen]],
        generation: int,
        now: datetime,
    ) -> None:
        """strategy replay: the new version is a ReplayRun; the active version serves until its cutover, and
        the StreamJob adopts the replayed deployment then (see live_version)."""
        meta = obj["metadata"]
        active = status.get("activeVersion")
        found = runs.get(job.version)
        run_name = found[0] if found else f"{meta['name']}-{job.version}"
        run_phase = found[2].phase if found else None
        patch = {
            "phase": "Upgrading",
            "replay": {"run": run_name, "version": job.version, "phase": run_phase},
        }
        if run_phase in ("Failed", "Aborted", "RolledBack"):
            message = f"ReplayRun {run_name} for {job.version} ended {run_phase}; {active} stays active"
            patch["phase"] = "Running"
            await self._write(
                obj,
                patch,
                stalled("ReplayFailed", message),
                once(status, "ReplayFailed", message),
                generation,
                now,
            )
            return
        events: list[Event] = []
        if found is None:
            message = f"replaying {job.version} with ReplayRun {run_name}; {active} serves until the cutover"
            events.append(Event("Normal", "ReplayUpgrade", message))
        message = f"ReplayRun {run_name} for {job.version} is {run_phase or 'Pending'}; {active} serves"
        # Intent first; the run's name is derived, so a repeat after a crash finds it instead of making two.
        await self._write(obj, patch, progressing("Replaying", message), events, generation, now)
        if found is None:
            await self.kube.apply(replay_run_for(meta["namespace"], meta["name"], meta["uid"], run_name, job))

    async def _runs(self, namespace: str, name: str) -> dict[str, tuple[str, ReplayRunSpec, RunSeen]]:
        """This job's ReplayRuns by version: their specs render adopted deployments exactly as they ran."""
        found: dict[str, tuple[str, ReplayRunSpec, RunSeen]] = {}
        if self.runs is not None:
            listed = copies(self.runs, (namespace, name))
        else:
            listed = await self.kube.select(API_VERSION, "ReplayRun", namespace, "")
        for r in listed:
            if (r.get("spec") or {}).get("jobRef", {}).get("name") != name:
                continue
            try:
                run = ReplayRunSpec.model_validate(r["spec"])
            except ValidationError:
                continue
            st = r.get("status") or {}
            cut = st.get("cutover") or {}
            at = dt(cut.get("at"))
            window = duration(run.rollback_window)
            seen = RunSeen(
                r["metadata"]["name"],
                st.get("phase") or "Pending",
                cut.get("replacedVersion") or cut.get("fromVersion"),
                cut.get("toVersion") or run.version,
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


def retire_with_run(patch: dict[str, Any], record: dict[str, Any]) -> None:
    """The version a replay replaced is kept for the run's rollback window, not the StreamJob's."""
    if record.get("rolledBack") or not record.get("retireAt"):
        return
    for entry in patch.get("deployments") or []:
        if entry["version"] == record.get("fromVersion") and entry.get("role") == "previous":
            entry["retireAt"] = record["retireAt"]
