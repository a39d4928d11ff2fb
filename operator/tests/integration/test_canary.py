"""Canary user stories: the candidate runs beside stable with its own group and a shadow output; a canary
that fails a gate is removed with stable untouched, and one that passes is promoted by a savepoint upgrade;
canaries follow one another, and a version moved during an analysis is analysed from the start (never
promoted unseen).

The FKO double plays the deployments; the test plays the jobs' output by writing to the output topics.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from tests.doubles.fko import FakeFlinkOperator
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess, conditions


def canary_job(version: str, bootstrap: str, source: str, base: str) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "enricher"},
        "spec": {
            "version": version,
            "source": {"kafka": {"bootstrapServers": bootstrap}, "topics": [source]},
            "output": {"topic": {"base": base}},
            "flink": {"image": "img", "flinkVersion": "v1_20", "jarURI": "local:///job.jar"},
            "upgrade": {
                "strategy": "canary",
                "readinessTimeout": "20s",
                "stableFor": "2s",
                "canary": {
                    "duration": "6s",
                    "maxRestarts": 0,
                    "maxLagRecords": 1000000,
                    "outputRateRatio": {"min": 0.5, "max": 2.0},
                    "noData": "Fail",
                },
            },
        },
    }


def ready(obj: dict[str, Any]) -> bool:
    cond = conditions(obj).get("Ready", {})
    return cond.get("status") == "True" and cond.get("observedGeneration") == obj["metadata"]["generation"]


def deployments(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    out = json.loads(kubectl("get", "flinkdeployments", "-l", "kappa.dev/job=enricher", "-o", "json"))
    return {fd["metadata"]["name"]: fd for fd in out["items"]}


def start_v1(kubectl: Kubectl, kafka: KafkaTestbed) -> tuple[str, str]:
    source = kafka.topic(partitions=1)
    base = f"out-{uuid.uuid4().hex[:6]}"
    for topic in (f"{base}.v1", f"{base}.v2-canary", f"{base}.v3-canary"):
        kafka.run(kafka.admin.ensure_topic(topic, partitions=1))
    kubectl.apply(canary_job("v1", kafka.bootstrap, source, base))
    kubectl.wait_for("sj", "enricher", ready, timeout=60, what="v1 Ready")
    return source, base


def test_a_canary_that_fails_a_gate_is_removed_and_stable_is_untouched(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, kafka: KafkaTestbed
) -> None:
    ns = str(kubectl.namespace)
    source, base = start_v1(kubectl, kafka)
    stable_before = deployments(kubectl)["enricher-v1"]
    fko.crash_loop("enricher-v2-canary", every=0.5, restart_delay=0.2)

    kubectl.apply(canary_job("v2", kafka.bootstrap, source, base))
    done = kubectl.wait_for(
        "sj",
        "enricher",
        lambda o: conditions(o).get("CanaryAborted", {}).get("status") == "True",
        timeout=60,
        what="canary aborted",
    )
    # The abort is recorded before the candidate is removed (intent first): its removal follows.
    deadline = time.monotonic() + 30
    while "enricher-v2-canary" in deployments(kubectl) and time.monotonic() < deadline:
        time.sleep(0.5)

    fds = deployments(kubectl)
    assert "enricher-v2-canary" not in fds
    assert fds["enricher-v1"]["metadata"]["generation"] == stable_before["metadata"]["generation"]
    assert fds["enricher-v1"]["spec"]["job"]["state"] == "running"
    assert fko.savepoints(ns, "enricher-v1") == []  # stable was never stopped
    assert done["status"]["activeVersion"] == "v1"
    assert done["status"]["canary"]["result"] == "Aborted"
    assert conditions(done)["Stalled"]["status"] == "True"
    gates = {g["name"]: g["passed"] for g in done["status"]["canary"]["gates"]}
    assert gates["Restarts"] is False
    # The judgement stays visible after the candidate is gone (the next look wrote no gates, and they went).
    time.sleep(2)
    later = {g["name"]: g["passed"] for g in kubectl.get("sj", "enricher")["status"]["canary"]["gates"]}
    assert later["Restarts"] is False


def test_a_canary_that_passes_is_promoted_by_a_savepoint_upgrade(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, kafka: KafkaTestbed
) -> None:
    ns = str(kubectl.namespace)
    source, base = start_v1(kubectl, kafka)
    kubectl.apply(canary_job("v2", kafka.bootstrap, source, base))
    kubectl.wait_for(
        "sj",
        "enricher",
        lambda o: (o["status"].get("canary") or {}).get("step") == "Analysing",
        timeout=30,
        what="canary analysing",
    )
    canary = deployments(kubectl)["enricher-v2-canary"]["spec"]["flinkConfiguration"]
    assert canary["kappa.group-id"] == f"{ns}.enricher.v2-canary"
    assert canary["kappa.startup-mode"] == "latest-offset"
    assert canary["kappa.output-topic"] == f"{base}.v2-canary"

    # Input arrives, and both versions write about as much output: the rates agree.
    deadline = time.monotonic() + 40
    while (kubectl.get("sj", "enricher")["status"].get("canary") or {}).get("step") == "Analysing":
        now = int(time.time() * 1000)
        for topic in (source, f"{base}.v1", f"{base}.v2-canary"):
            kafka.produce(topic, [(0, now)] * 20)
        assert time.monotonic() < deadline, "the analysis never ended"
        time.sleep(0.5)

    done = kubectl.wait_for(
        "sj",
        "enricher",
        lambda o: ready(o) and o["status"].get("activeVersion") == "v2",
        timeout=60,
        what="v2 promoted",
    )
    assert done["status"]["canary"]["result"] == "Promoted"
    assert all(g["passed"] for g in done["status"]["canary"]["gates"]), done["status"]["canary"]["gates"]
    assert "enricher-v2-canary" not in deployments(kubectl)
    assert fko.restored_from(ns, "enricher-v2") == fko.savepoints(ns, "enricher-v1")[-1]


@contextlib.contextmanager
def traffic(kafka: KafkaTestbed, source: str, base: str) -> Iterator[None]:
    """Input keeps arriving, and stable (writing the v1 lineage's topic) and every candidate write as much
    output: any analysis that runs passes its rate gates."""
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            now = int(time.time() * 1000)
            for topic in (source, f"{base}.v1", f"{base}.v2-canary", f"{base}.v3-canary"):
                kafka.produce(topic, [(0, now)] * 20)
            stop.wait(0.5)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield
    finally:
        stop.set()
        feeder.join(timeout=10)


def test_canaries_follow_one_another(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, kafka: KafkaTestbed
) -> None:
    """The stuck canary: after one promotion, the next version change must start the next canary."""
    ns = str(kubectl.namespace)
    source, base = start_v1(kubectl, kafka)
    for previous, version in (("v1", "v2"), ("v2", "v3")):
        kubectl.apply(canary_job(version, kafka.bootstrap, source, base))
        with traffic(kafka, source, base):
            done = kubectl.wait_for(
                "sj",
                "enricher",
                lambda o, v=version: ready(o) and o["status"].get("activeVersion") == v,
                timeout=90,
                what=f"{version} promoted",
            )
        assert done["status"]["canary"]["result"] == "Promoted"
        assert fko.restored_from(ns, f"enricher-{version}") == fko.savepoints(ns, f"enricher-{previous}")[-1]
    settled = kubectl.wait_for(
        "sj",
        "enricher",
        lambda o: (o["status"].get("canary") or {}).get("step") == "Idle",
        timeout=30,
        what="the canary at rest after its promotion",
    )
    assert settled["status"]["activeVersion"] == "v3"
    assert not [n for n in deployments(kubectl) if n.endswith("-canary")]


def test_a_version_moved_during_the_analysis_is_analysed_from_the_start(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, kafka: KafkaTestbed
) -> None:
    """The unanalysed promotion: v3 replaces v2 while v2 is analysed. v2's candidate goes, v3 gets its own
    analysis, and only then is v3 promoted; v2 never runs as a version."""
    ns = str(kubectl.namespace)
    source, base = start_v1(kubectl, kafka)
    with traffic(kafka, source, base):
        kubectl.apply(canary_job("v2", kafka.bootstrap, source, base))
        kubectl.wait_for(
            "sj",
            "enricher",
            lambda o: (o["status"].get("canary") or {}).get("step") == "Analysing",
            timeout=30,
            what="canary v2 analysing",
        )
        kubectl.apply(canary_job("v3", kafka.bootstrap, source, base))
        # v3's candidate is analysed from the start: v2's analysis time is no time of v3's. On the old code
        # v3 was promoted as soon as v2's analysis ended, unanalysed.
        analysing = kubectl.wait_for(
            "sj",
            "enricher",
            lambda o: (
                (o["status"].get("canary") or {}).get("version") == "v3"
                and o["status"]["canary"].get("step") == "Analysing"
            ),
            timeout=30,
            what="canary v3 analysing",
        )
        assert analysing["status"]["activeVersion"] == "v1"
        done = kubectl.wait_for(
            "sj",
            "enricher",
            lambda o: ready(o) and o["status"].get("activeVersion") == "v3",
            timeout=90,
            what="v3 promoted",
        )
        analysed_since = analysing["status"]["canary"]["startedAt"]
    assert done["status"]["history"][-2]["at"] >= analysed_since
    fds = deployments(kubectl)
    assert "enricher-v2" not in fds and "enricher-v2-canary" not in fds
    assert done["status"]["canary"]["result"] == "Promoted"
    assert fko.restored_from(ns, "enricher-v3") == fko.savepoints(ns, "enricher-v1")[-1]
    superseded = json.loads(
        kubectl("get", "events", "--field-selector", "reason=CanarySuperseded", "-o", "json")
    )["items"]
    assert len(superseded) == 1 and "from v2 to v3" in superseded[0]["message"]
