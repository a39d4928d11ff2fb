"""Which versions a MaterializedView knows and what each is to it: the list in status.versions (Active,
Previous, Building, Retired, oldest first), the version a table or topic is, and the version a ReplayRun
switched the view to. Pure reads of the view's, its StreamJob's and the runs' status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kappa.controllers.status import ts
from kappa.machines import replay


def explains(run: dict[str, Any]) -> str | None:
    """The version a run switched the view to (or back to, after a rollback)."""
    status = run.get("status") or {}
    cut = status.get("cutover") or {}
    phase = status.get("phase")
    if phase in ("CuttingOver", "Observing", "Succeeded"):
        return cut.get("toVersion")
    if phase == "RolledBack":
        return cut.get("fromVersion")
    return None


def known_versions(
    status: dict[str, Any], job_obj: dict[str, Any] | None, runs: list[dict[str, Any]], pin: str | None
) -> list[str]:
    """Every version the view may serve, oldest first."""
    seen: list[str] = []
    job_status = (job_obj or {}).get("status") or {}
    sources = [
        *(v.get("name") for v in status.get("versions") or []),
        *(h.get("version") for h in job_status.get("history") or []),
        *(d.get("version") for d in job_status.get("deployments") or []),
        job_status.get("activeVersion"),
        *((r.get("spec") or {}).get("version") for r in runs),
        pin,
    ]
    for version in sources:
        if version and version not in seen:
            seen.append(str(version))
    return seen


def version_of(physical_now: str | None, known: list[str], physical: Any) -> str | None:
    if physical_now is None:
        return None
    for version in known:
        if physical(version) == physical_now:
            return version
    return f"({physical_now})"


def version_entries(
    status: dict[str, Any],
    known: list[str],
    physical: Any,
    active: str | None,
    previous: str | None,
    runs: list[dict[str, Any]],
    retain: int,
    now: datetime,
) -> list[dict[str, Any]]:
    old = {v.get("name"): v for v in status.get("versions") or []}
    building = {
        (r.get("spec") or {}).get("version")
        for r in runs
        if ((r.get("status") or {}).get("phase") or "Pending") in replay.BEFORE_CUTOVER
    }
    entries = []
    for version in known:
        if version == active:
            state = "Active"
        elif version == previous:
            state = "Previous"
        elif version in building:
            state = "Building"
        else:
            state = "Retired"
        entries.append(
            {
                "name": version,
                "physical": physical(version) or "",
                "created": old.get(version, {}).get("created") or ts(now),
                "state": state,
            }
        )
    keep = [e for e in entries if e["state"] != "Retired"]
    retired = [e for e in entries if e["state"] == "Retired"]
    # retainVersions counts the active one; building versions are listed besides.
    room = max(retain - len([e for e in keep if e["state"] in ("Active", "Previous")]), 0)
    return (keep + retired[-room:] if room else keep)[-32:]
