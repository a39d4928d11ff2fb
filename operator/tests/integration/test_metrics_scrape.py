"""An on-call engineer's Prometheus sees a replay's progress, phase and lag on the operator's /metrics, with
the labels docs/metrics.md names and values that agree with the ReplayRun's status and with Kafka; and the
series of a ReplayRun and of a StreamJob go when the resource is deleted (a stale
`kappa_replay_phase{phase="Replaying"} 1` would alert on for ever). Real API server, Kafka and PostgreSQL (the
shop of the replay stories); FKO and the jobs are the doubles. About 50 s: the shop, a paced replay scraped
while it replays, then two deletions.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from kappa.render.names import consumer_group
from tests.doubles.pipeline import FakePipeline
from tests.integration.shop import Shop, phase, replayrun
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess

Sample = tuple[str, dict[str, str], float]
PACE = 15  # records/s of the replay's job: its 600 records would take 40 s
HELD = 0.05  # records/s once it has read some: one record per 20 s, so that the figures settle and agree


def scrape(operator: OperatorProcess) -> list[Sample]:
    """Every sample of /metrics, parsed as Prometheus parses the text format."""
    url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def find(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]


def one(samples: list[Sample], name: str, **labels: str) -> float:
    found = find(samples, name, **labels)
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0][2]


def gone_for_good(
    operator: OperatorProcess, about: Callable[[Sample], bool], what: str, timeout: float = 30
) -> None:
    """No series about the resource within `timeout`, and none back 3 s later (a poll or a look in flight at
    the deletion must not bring one back)."""
    deadline = time.monotonic() + timeout
    while left := [s for s in scrape(operator) if about(s)]:
        assert time.monotonic() < deadline, f"{what}: still on /metrics after {timeout:.0f}s: {left}"
        time.sleep(0.5)
    time.sleep(3)
    assert not [s for s in scrape(operator) if about(s)], f"{what}: series came back"


def test_a_replay_is_on_metrics_with_its_progress_phase_and_lag_and_leaves_with_its_resource(
    shop: Shop,
    kubectl: Kubectl,
    kafka: KafkaTestbed,
    pipeline: FakePipeline,
    kappa_operator: OperatorProcess,
) -> None:
    ns = str(kubectl.namespace)
    # The live StreamJob: its phase and active version, one series each that is 1.
    deadline = time.monotonic() + 30
    while kappa_operator.metric("kappa_streamjob_active_version", namespace=ns, job="sessionizer") is None:
        assert time.monotonic() < deadline, "no kappa_streamjob_active_version for the running sessionizer"
        time.sleep(0.5)
    samples = scrape(kappa_operator)
    assert one(samples, "kappa_streamjob_phase", namespace=ns, job="sessionizer", phase="Running") == 1
    phases = find(samples, "kappa_streamjob_phase", namespace=ns, job="sessionizer")
    assert sum(s[2] for s in phases) == 1 and len(phases) > 1, phases  # one series per phase, one of them 1
    active = find(samples, "kappa_streamjob_active_version", namespace=ns)
    assert [(s[1]["version"], s[2]) for s in active] == [("v1", 1)]

    # A replay of the 600 records through v2, paced so that it is scraped while it replays.
    pipeline.pace(ns, "sessionizer-v2", PACE)
    kubectl.apply(replayrun("scraped"))
    group = consumer_group(ns, "sessionizer", "v2")
    lag_labels = {"namespace": ns, "job": "sessionizer", "version": "v2", "group": group}
    deadline = time.monotonic() + 60
    while True:
        run = kubectl.get("rr", "scraped")
        progress = (run.get("status") or {}).get("progress") or {}
        if phase(run) in ("Replaying", "CatchingUp") and (progress.get("consumed") or 0) >= 3 * PACE:
            break
        assert time.monotonic() < deadline, f"no progress: {run.get('status')}"
        time.sleep(0.5)
    # Held nearly still, the figures settle (a reconcile and a lag poll each second) and agree exactly.
    pipeline.pace(ns, "sessionizer-v2", HELD)
    deadline = time.monotonic() + 20
    while True:
        run = kubectl.get("rr", "scraped")
        samples = scrape(kappa_operator)
        ends = kafka.run(kafka.admin.end_offsets([(shop.topic, p) for p in range(3)]))
        committed = kafka.run(kafka.admin.committed(group))
        progress = run["status"]["progress"]
        behind = {str(p): ends[(t, p)] - committed.get((t, p), 0) for t, p in ends}
        # Progress: status.progress.consumed / target, labelled by namespace and run.
        ratio = [(s[1]["run"], s[2]) for s in find(samples, "kappa_replay_progress_ratio", namespace=ns)]
        # Lag: produced minus committed, by namespace, job, version and group, in total and per partition.
        lag = [s[2] for s in find(samples, "kappa_consumer_group_lag_records", **lag_labels)]
        parts = {s[1]["partition"]: s[2] for s in find(samples, "kappa_consumer_lag_records", **lag_labels)}
        agree = ratio == [("scraped", progress["consumed"] / progress["target"])]
        agree &= lag == [sum(behind.values())] == [progress["target"] - progress["consumed"]]
        agree &= parts == behind
        if agree:
            break
        figures = f"progress {progress}, ratio {ratio}, lag {lag} {parts}, Kafka's end - committed {behind}"
        assert time.monotonic() < deadline, f"/metrics disagrees with the status and Kafka: {figures}"
        time.sleep(0.5)
    assert progress["target"] == 600 and 0 < progress["consumed"] < 600, progress
    assert phase(run) in ("Replaying", "CatchingUp")
    # Phase: 1 for status.phase, 0 for every other.
    assert one(samples, "kappa_replay_phase", namespace=ns, run="scraped", phase=phase(run) or "") == 1
    run_phases = find(samples, "kappa_replay_phase", namespace=ns, run="scraped")
    assert sum(s[2] for s in run_phases) == 1 and len(run_phases) > 1, run_phases

    # Deleted while it replays: every series of the run goes, its group's lag too.
    kubectl("delete", "rr", "scraped", "--wait=true", "--timeout=60s")

    def of_the_run(s: Sample) -> bool:
        labels = s[1]
        mine = labels.get("run") == "scraped" or (labels.get("kind"), labels.get("name")) == (
            "ReplayRun",
            "scraped",
        )
        return labels.get("namespace") == ns and (mine or labels.get("group") == group)

    gone_for_good(kappa_operator, of_the_run, "the deleted ReplayRun")

    # The StreamJob deleted: its phase, active version and v1's lag series go.
    kubectl("delete", "sj", "sessionizer", "--wait=true", "--timeout=60s")
    gone_for_good(
        kappa_operator,
        lambda s: s[1].get("namespace") == ns and s[1].get("job") == "sessionizer",
        "the deleted StreamJob",
    )
