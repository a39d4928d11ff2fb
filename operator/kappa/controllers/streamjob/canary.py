"""StreamJob canary analysis in the controller: the candidate's deployment view, the rates it is judged by
(end offsets of input, stable and shadow outputs), handed to machines/canary.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kappa.adapters.kafka.connection import KafkaConnection
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import CanaryStatus, StreamJobStatus
from kappa.controllers.lag import LagTracking
from kappa.machines import canary, runtime_facts, upgrade
from kappa.machines import streamjob as machine
from kappa.machines.fko import count_restarts, deployment_view, job_update_time
from kappa.render import names


async def look(
    lag: LagTracking,
    job: StreamJobSpec,
    status: StreamJobStatus,
    ustate: upgrade.UpgradeState,
    canaries: dict[str, Any],
    kafka: KafkaConnection | None,
    now: datetime,
    namespace: str,
    name: str,
) -> tuple[canary.CanaryDecision, machine.CanarySeen]:
    """The canary machine's decision on what is seen of the candidate (and, from Analysing, of Kafka)."""
    cstate = canary.from_status(status)
    cspec = machine.canary_spec(job, ustate)
    fd = canaries.get(cstate.version or job.version)
    previous = status.canary or CanaryStatus(step="Idle")
    state_now = deployment_view(fd).job_state
    update_now = job_update_time(fd)
    restarts = count_restarts(
        previous.restarts, previous.job_state, state_now, previous.job_update_time, update_now
    )
    if cstate.step in ("Idle", "Aborted", "Promoting"):
        restarts = 0  # a new candidate starts counting afresh
    view = deployment_view(fd, restarts=restarts)

    observed = canary.CanaryObserved(view, None, None, None, 0)
    if kafka and cstate.step == "Analysing" and cstate.version:
        observed = await _measure(lag, job, status, kafka, namespace, name, cstate, view)
    decision = canary.decide(cstate, observed, cspec, now)
    baseline: dict[str, int] | None = None
    if kafka and decision.state.step == "Analysing" and cstate.step != "Analysing":
        baseline = await _totals(lag, job, status, kafka, decision.state.version or job.version)
    return decision, machine.CanarySeen(state_now, restarts, baseline, update_now)


async def _totals(
    lag: LagTracking, job: StreamJobSpec, status: StreamJobStatus, kafka: KafkaConnection, version: str
) -> dict[str, int]:
    """End offsets summed over the input, the stable output and the canary's shadow output."""
    admin = lag.monitor(kafka).admin
    stable = status.active_version
    topics = {"input": list(job.source.topics)}
    if job.output.topic and stable:
        stable_output = status.output_versions.get(stable, stable)
        topics["stable"] = [names.output_topic(job.output.topic.base, stable_output)]
        topics["canary"] = [names.output_topic(job.output.topic.base, f"{version}-canary")]
    totals: dict[str, int] = {}
    for key, topic_names in topics.items():
        found, _missing = await admin.partitions_by_topic(topic_names)
        parts = [p for ps in found.values() for p in ps]
        totals[key] = sum((await admin.end_offsets(parts)).values()) if parts else 0
    return totals


async def _measure(
    lag: LagTracking,
    job: StreamJobSpec,
    status: StreamJobStatus,
    kafka: KafkaConnection,
    namespace: str,
    name: str,
    cstate: canary.CanaryState,
    view: runtime_facts.Deployment,
) -> canary.CanaryObserved:
    """Rates over the analysis so far, from end offsets: shadow output vs stable output, and the input."""
    assert cstate.version is not None and cstate.entered_at is not None
    elapsed = max((datetime.now(UTC) - cstate.entered_at).total_seconds(), 1.0)
    baseline = (status.canary.baseline if status.canary else None) or {}
    totals = await _totals(lag, job, status, kafka, cstate.version)
    polled = lag.latest(names.consumer_group(namespace, name, f"{cstate.version}-canary"))
    inputs = totals["input"] - int(baseline.get("input", totals["input"]))
    rate = (
        (totals.get("canary", 0) - int(baseline.get("canary", 0))) / elapsed if "canary" in totals else None
    )
    stable_rate = (
        (totals.get("stable", 0) - int(baseline.get("stable", 0))) / elapsed if "stable" in totals else None
    )
    return canary.CanaryObserved(view, polled.total if polled else 0, rate, stable_rate, inputs)
