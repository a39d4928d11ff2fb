"""The groups of one job, as every look asks for them (LagTracking.retain): tracked, moved to other topics,
untracked, and several jobs side by side. No Kafka call is made (the admin is a placeholder): tracking is
bookkeeping."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from kappa.adapters.lag_monitor import LagMonitor


def labels(namespace: str, job: str, version: str) -> dict[str, str]:
    return {"namespace": namespace, "job": job, "version": version}


def test_the_groups_of_a_job_follow_track_and_untrack() -> None:
    monitor = LagMonitor(cast(Any, SimpleNamespace(bootstrap_servers="127.0.0.1:9")))
    monitor.track("ns.a.v1", ["t"], labels=labels("ns", "a", "v1"))
    monitor.track("ns.a.v2", ["t"], labels=labels("ns", "a", "v2"))
    monitor.track("ns.b.v1", ["t"], labels=labels("ns", "b", "v1"))
    monitor.track("other.a.v1", ["t"], labels=labels("other", "a", "v1"))
    assert monitor.groups_of("ns", "a") == ["ns.a.v1", "ns.a.v2"]
    assert monitor.groups_of("other", "a") == ["other.a.v1"]

    monitor.track("ns.a.v2", ["t", "u"], labels=labels("ns", "a", "v2"))  # new topics: tracked anew
    assert monitor.groups_of("ns", "a") == ["ns.a.v1", "ns.a.v2"]
    assert monitor.tracks("ns.a.v2")

    monitor.untrack("ns.a.v1")
    assert monitor.groups_of("ns", "a") == ["ns.a.v2"]
    monitor.untrack("ns.a.v2")
    assert monitor.groups_of("ns", "a") == []
    assert not monitor.tracks("ns.a.v2")
    assert monitor.groups_of("ns", "b") == ["ns.b.v1"]
    assert monitor.groups == ["ns.b.v1", "other.a.v1"]
