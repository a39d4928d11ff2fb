"""Deploying a StreamJob's versions: each action of the upgrade and canary machines, carried out through the
job runtime (`CARRY_OUT`: a version's FlinkDeployment rendered from spec, as it was deployed, or as its
ReplayRun deployed it; the canary's shadow deployment), the versions' output KafkaTopics, and the retirement
of previous versions once their rollback window ends."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kappa.adapters.job_runtime.seam import JobRuntime
from kappa.adapters.kube import ApiException, Kube
from kappa.api.base import duration
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus
from kappa.controllers.failpoints import acted, crash_at
from kappa.controllers.looks import OfObject
from kappa.controllers.status import post_events
from kappa.machines import canary, upgrade
from kappa.machines.decision import Event
from kappa.machines.fko import PERIODIC_CHECKPOINT_INTERVAL, fko_configuration, kafka_topic_ready
from kappa.machines.promotion import RunSeen
from kappa.render import names
from kappa.render.flink import (
    Injection,
    StartupMode,
    already_applied,
    flink_deployment,
    injection_for,
    kafka_topic,
    quieted,
    with_state,
)
from kappa.render.replay import replay_deployment, replay_retention


@dataclass(frozen=True)
class Deploy(OfObject):
    """What the actions of one look are carried out with."""

    runtime: JobRuntime
    job: StreamJobSpec
    obj: dict[str, Any]
    bootstrap: str
    runs: dict[str, tuple[str, ReplayRunSpec, RunSeen]] = field(default_factory=dict)
    deployed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The versions' deployments as they are, by version."""

    @property
    def uid(self) -> str:
        return str(self.obj["metadata"]["uid"])


async def carry_out(deploy: Deploy, actions: list[Any]) -> None:
    for action in actions:
        await CARRY_OUT[type(action)](deploy, action)
        acted(
            "streamjob", deploy.namespace, deploy.name
        )  # a failpoint after each side effect (failpoints.py)


async def _apply(d: Deploy, action: upgrade.Apply) -> None:
    replayed = d.runs.get(action.version)
    if replayed and not action.initial_savepoint:
        # Rendered as its run deployed it: adoption must not look like a spec change to FKO.
        run_name, run, _ = replayed
        fd = replay_deployment(
            namespace=d.namespace,
            job_name=d.name,
            job_uid=d.uid,
            job=d.job,
            run_name=run_name,
            run=run,
            bootstrap_servers=d.bootstrap,
            state=action.state,
        )
    elif action.version != d.job.version and action.version in d.deployed:
        # Another version than spec's (the one being replaced, or rolled back to): as it was deployed.
        fd = with_state(
            d.deployed[action.version],
            state=action.state,
            initial_savepoint_path=action.initial_savepoint,
            checkpoint_interval=fko_configuration(
                d.job.flink.flink_configuration, duration(d.job.upgrade.readiness_timeout)
            )[PERIODIC_CHECKPOINT_INTERVAL],
        )
    else:
        lineage = StreamJobStatus.of(d.obj).output_versions  # written first
        fd = flink_deployment(
            namespace=d.namespace,
            job=d.name,
            owner_uid=d.uid,
            spec=d.job,
            injection=injection(
                d.job,
                d.namespace,
                d.name,
                action.version,
                d.bootstrap,
                output_version=lineage.get(action.version),
            ),
            state=action.state,
            initial_savepoint_path=action.initial_savepoint,
        )
    if not already_applied(d.deployed.get(action.version), fd):
        await d.runtime.apply(fd)


async def _quiet(d: Deploy, action: upgrade.Quiet) -> None:
    deployed = d.deployed.get(action.version)
    if deployed is not None:
        await d.runtime.apply(quieted(deployed))


async def _delete(d: Deploy, action: upgrade.Delete) -> None:
    await d.runtime.delete(d.namespace, names.deployment_name(d.name, action.version))


async def _deploy_canary(d: Deploy, action: canary.DeployCanary) -> None:
    fd = flink_deployment(
        namespace=d.namespace,
        job=d.name,
        owner_uid=d.uid,
        spec=d.job,
        injection=injection(
            d.job, d.namespace, d.name, action.version, d.bootstrap, canary_of=action.version
        ),
    )
    fd["metadata"]["name"] = f"{names.deployment_name(d.name, action.version)}-canary"
    fd["metadata"]["labels"]["kappa.dev/role"] = "canary"
    await d.runtime.apply(fd)


async def _remove_canary(d: Deploy, action: canary.RemoveCanary) -> None:
    await d.runtime.delete(d.namespace, f"{names.deployment_name(d.name, action.version)}-canary")


CARRY_OUT: dict[type, Callable[[Deploy, Any], Awaitable[None]]] = {
    upgrade.Apply: _apply,
    upgrade.Delete: _delete,
    upgrade.Quiet: _quiet,
    canary.DeployCanary: _deploy_canary,
    canary.RemoveCanary: _remove_canary,
}
"""Each action of the upgrade and canary machines, and how it is carried out (each idempotent)."""


def injection(
    job: StreamJobSpec,
    namespace: str,
    name: str,
    version: str,
    bootstrap: str,
    *,
    canary_of: str | None = None,
    output_version: str | None = None,
) -> Injection:
    """What a version's job is given: its group, output names and starting position (a canary: latest)."""
    if canary_of:
        shadow = f"{canary_of}-canary"
        base = injection_for(
            namespace, name, job, shadow, bootstrap_servers=bootstrap, startup_mode="latest-offset"
        )
        return Injection(**{**base.__dict__, "version": canary_of})
    start = job.source.starting_position
    mode: StartupMode = (
        "earliest-offset" if start.earliest else "timestamp" if start.timestamp else "latest-offset"
    )
    stamp = int(start.timestamp.timestamp() * 1000) if start.timestamp else None
    return injection_for(
        namespace,
        name,
        job,
        version,
        bootstrap_servers=bootstrap,
        startup_mode=mode,
        startup_timestamp_ms=stamp,
        output_version=output_version,
    )


async def ensure_topic(
    kube: Kube, job: StreamJobSpec, obj: dict[str, Any], version: str, run: ReplayRunSpec | None = None
) -> tuple[bool, str]:
    """Apply the version's KafkaTopic (idempotent, from spec alone) and say whether it is ready."""
    if not job.output.topic or not job.source.kafka.cluster_ref:
        return True, "no Strimzi topic"  # direct backend: the sink, or the Kafka adapter, creates it
    api = await kube.preferred("KafkaTopic", ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"])
    if api is None:
        return False, "KafkaTopic (kafka.strimzi.io) is not served by this cluster: install Strimzi"
    meta = obj["metadata"]
    out = job.output.topic
    topic = kafka_topic(
        namespace=job.source.kafka.namespace or meta["namespace"],
        job=meta["name"],
        owner_uid=meta["uid"],
        topic=names.output_topic(out.base, version),
        version=version,
        partitions=out.partitions,
        replicas=out.replicas,
        # A replayed version's topic keeps the run's retention: its records carry their old timestamps.
        config={**out.config, "retention.ms": replay_retention(run)} if run else out.config,
        cluster=job.source.kafka.cluster_ref,
        api_version=api,
        owned=job.output.deletion_policy == "Delete",
    )
    try:
        applied = await kube.apply(topic)
    except ApiException as exc:
        if exc.status not in (403, 404):
            raise
        # The Kafka cluster's namespace is missing, or closed to the operator: the user's to fix.
        return False, (
            f"KafkaTopic {topic['metadata']['name']} cannot be created in namespace "
            f"{topic['metadata']['namespace']} (spec.source.kafka.namespace): {api_message(exc)}"
        )
    ok, why = kafka_topic_ready(applied)
    return ok, f"KafkaTopic {topic['metadata']['name']}: {why}"


async def retire(
    runtime: JobRuntime, obj: dict[str, Any], status: StreamJobStatus, namespace: str, now: datetime
) -> None:
    """Previous versions stay suspended, ready for rollback, until their window ends; savepoints stay.
    Said once, by the look whose delete removed the deployment."""
    for entry in status.deployments:
        retire_at = entry.retire_at
        if entry.role == "previous" and retire_at and now >= retire_at:
            crash_at("streamjob:Retire", namespace, entry.deployment)
            if await runtime.delete(namespace, entry.deployment):
                # Through the operator's recorder: a look runs outside any Kopf handler (kopf.event
                # needs a handler's context, and raised LookupError in the schedule's looks).
                message = (
                    f"{entry.version}: rollback window over, {entry.deployment} deleted (its savepoints stay)"
                )
                post_events(obj, [Event("Normal", "PreviousVersionRetired", message)])
            crash_at("streamjob:Retire:1", namespace, entry.deployment)


def api_message(exc: ApiException) -> str:
    """The API server's own words for a refusal (its Status message), not the client's repr."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
