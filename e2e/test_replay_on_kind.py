"""The replay story on kind, end to end: real Strimzi (Kafka and its topic operator), real FKO running real
Flink jobs, and this operator from its image and Helm chart (fixtures in conftest.py).

v1 of StreamJob `enrich` runs live and writes clicks-enriched.v1, served to Kafka readers by the ConfigMap
of MaterializedView `clicks-enriched`. ReplayRun `enrich-v2` replays the whole log through the fix into
clicks-enriched.v2, catches up with live traffic, validates, and cuts over: the ConfigMap names v2's topic, v1
is suspended at its final savepoint. A rollback in the window brings v1 back from that savepoint and the
ConfigMap back to v1's topic. Asserted is what a user sees: conditions, the view, the records in the topics.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from e2e.kindbed import JOBS_NS, MANIFESTS, Cluster

USERS = 5


def clicks(start: int, count: int, tag: str) -> list[dict[str, Any]]:
    """Clicks with mixed-case URLs: v1's bug upper-cases them, v2 keeps them."""
    return [
        {"user_id": f"u{i % USERS}", "url": f"/Shop/{tag}/Item-{i}", "ts": 1_790_000_000_000 + i * 1000}
        for i in range(start, start + count)
    ]


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def is_true(obj: dict[str, Any], kind: str) -> bool:
    return conditions(obj).get(kind, {}).get("status") == "True"


def phase(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def job_state(cluster: Cluster, deployment: str) -> str | None:
    fd = cluster.get("flinkdeployment", deployment) or {}
    return ((fd.get("status") or {}).get("jobStatus") or {}).get("state")


def active_topic(cluster: Cluster) -> str | None:
    cm = cluster.get("configmap", "clicks-enriched-active") or {}
    return (cm.get("data") or {}).get("activeTopic")


def wait_records(
    cluster: Cluster,
    topic: str,
    check: Callable[[list[dict[str, Any]]], bool],
    what: str,
    timeout: float = 300,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = cluster.consume(topic)
        if check(records):
            return records
        time.sleep(10)
    raise AssertionError(f"{topic}: {what} not within {timeout:.0f}s; {len(records)} records: {records[:3]}")


@pytest.mark.timeout(3600)
def test_v1_live_replay_v2_cutover_then_rollback(platform_ready: Cluster) -> None:
    cluster = platform_ready
    cluster.produce("clicks", clicks(0, 200, "before"))

    # v1 live: its FlinkDeployment RUNNING on FKO, the StreamJob Ready, the view on v1's topic.
    cluster.kubectl("-n", JOBS_NS, "apply", "-f", str(MANIFESTS / "materializedview.yaml"))
    cluster.kubectl("-n", JOBS_NS, "apply", "-f", str(MANIFESTS / "streamjob.yaml"))
    job = cluster.wait_for("sj", "enrich", lambda o: is_true(o, "Ready"), what="v1 Ready", timeout=600)
    assert job["status"]["activeVersion"] == "v1"
    assert job_state(cluster, "enrich-v1") == "RUNNING"
    view = cluster.wait_for(
        "mv",
        "clicks-enriched",
        lambda o: (o.get("status") or {}).get("activeVersion") == "v1" and is_true(o, "Ready"),
        what="view on v1",
        timeout=120,
    )
    assert view["status"]["activeVersion"] == "v1"
    assert active_topic(cluster) == "clicks-enriched.v1"
    v1 = wait_records(cluster, "clicks-enriched.v1", lambda r: len(r) >= 200, "v1's 200 records")
    assert {r["version"] for r in v1} == {"v1"}
    assert all(r["url"] == r["url"].upper() for r in v1)  # the bug, as v1 writes it

    # The replay of v2 from the start of the log, with live traffic meanwhile.
    cluster.kubectl("-n", JOBS_NS, "apply", "-f", str(MANIFESTS / "replayrun-v2.yaml"))
    cluster.wait_for(
        "rr",
        "enrich-v2",
        lambda o: phase(o) not in (None, "Pending", "Preflight"),
        what="replaying",
        timeout=300,
    )
    cluster.produce("clicks", clicks(200, 100, "during"))

    # Caught up, validated, cut over: the view names v2's topic, v2 runs, v1 waits at its final savepoint.
    run = cluster.wait_for(
        "rr", "enrich-v2", lambda o: phase(o) in ("Observing", "Succeeded"), what="cut over", timeout=1200
    )
    for kind in ("CaughtUp", "Validated", "CutOver"):
        assert is_true(run, kind), conditions(run).get(kind)
    assert {c["name"]: c["passed"] for c in run["status"]["validation"]}["CountRatio"] is True
    cut = run["status"]["cutover"]
    assert (cut["fromVersion"], cut["toVersion"]) == ("v1", "v2")
    assert active_topic(cluster) == "clicks-enriched.v2"
    cluster.wait_for(
        "mv",
        "clicks-enriched",
        lambda o: (o["status"].get("activeVersion"), o["status"].get("previousVersion")) == ("v2", "v1"),
        what="view status at v2",
        timeout=120,
    )
    cluster.wait_for(
        "sj", "enrich", lambda o: o["status"].get("activeVersion") == "v2", what="v2 live", timeout=300
    )
    assert job_state(cluster, "enrich-v2") == "RUNNING"
    saved = cluster.wait_for(
        "rr",
        "enrich-v2",
        lambda o: (o["status"].get("cutover") or {}).get("previousSavepoint"),
        what="v1's final savepoint recorded",
        timeout=300,
    )["status"]["cutover"]["previousSavepoint"]
    assert "/flink-data/savepoints/" in saved  # on the node's hostPath: it outlives v1's pods
    v2 = wait_records(cluster, "clicks-enriched.v2", lambda r: len(r) >= 300, "v2's 300 records")
    assert {r["version"] for r in v2} == {"v2"}
    produced = {c["url"] for c in clicks(0, 200, "before") + clicks(200, 100, "during")}
    assert produced <= {r["url"] for r in v2}  # the fix: every URL as it came, the replayed and the live ones

    # Rollback in the window: v1 again from its final savepoint, the view back on v1's topic.
    cluster.kubectl("-n", JOBS_NS, "annotate", "rr", "enrich-v2", "kappa.dev/rollback=e2e-rollback")
    rolled = cluster.wait_for(
        "rr", "enrich-v2", lambda o: phase(o) == "RolledBack", what="rolled back", timeout=600
    )
    assert rolled["status"]["handledRequests"]["rollback"] == "e2e-rollback"
    assert is_true(rolled, "RolledBack")
    assert active_topic(cluster) == "clicks-enriched.v1"
    job = cluster.wait_for(
        "sj", "enrich", lambda o: o["status"].get("activeVersion") == "v1", what="v1 live again", timeout=300
    )
    assert job["status"]["promotion"]["rolledBack"] is True
    fd = cluster.wait_for(
        "flinkdeployment",
        "enrich-v1",
        lambda o: ((o.get("status") or {}).get("jobStatus") or {}).get("state") == "RUNNING",
        what="v1 running again",
        timeout=600,
    )
    assert fd["spec"]["job"]["state"] == "running"
    cluster.wait_for(
        "mv",
        "clicks-enriched",
        lambda o: o["status"].get("activeVersion") == "v1",
        what="view status back at v1",
        timeout=120,
    )
    # v1 goes on from where its final savepoint left it: new clicks reach its topic, and nothing it wrote
    # before the cutover is written again (a start without its state would read the log from the start).
    cluster.produce("clicks", clicks(300, 20, "after"))
    v1 = wait_records(
        cluster,
        "clicks-enriched.v1",
        lambda r: any("/AFTER/" in x["url"] for x in r),
        "v1's records after the rollback",
    )
    assert {r["version"] for r in v1} == {"v1"}
    repeated = [url for url, n in Counter(r["url"] for r in v1).items() if n > 1]
    assert not repeated, f"v1 wrote {len(repeated)} records twice, e.g. {repeated[:3]}"
