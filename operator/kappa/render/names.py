"""The names the operator derives for each version, so users never hand-edit them."""

from __future__ import annotations

from kappa.api.base import VIEW_CLAIM_SUFFIX


def consumer_group(namespace: str, job: str, version: str) -> str:
    """A new group per version: a reused group is how replays silently skip or repeat records."""
    return f"{namespace}.{job}.{version}"


def deployment_name(job: str, version: str) -> str:
    return f"{job}-{version}"


def transactional_id_prefix(namespace: str, job: str, version: str) -> str:
    """Every concurrently running exactly-once job needs its own prefix."""
    return f"{namespace}.{job}.{version}"


def output_topic(base: str, version: str) -> str:
    return f"{base}.{version}"


def output_table(base: str, version: str) -> str:
    return f"{base}_{version.replace('-', '_')}"


def view_claim(view: str) -> str:
    """The Lease through which one ReplayRun at a time holds a MaterializedView (adapters/claims.py)."""
    return f"{view}{VIEW_CLAIM_SUFFIX}"  # admission bounds view names by it (api/base.py)
