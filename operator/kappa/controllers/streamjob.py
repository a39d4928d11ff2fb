"""StreamJobs: observe the versions' FlinkDeployments → decide (upgrade and canary machines) → record intent
in status → apply or delete children → events. Level-triggered: create, resume and spec change (Kopf), watch
events of its children and runs (controllers/watches.py), and a schedule that looks again soon while something
moves and rarely at rest (controllers/schedule.py)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import kopf
from pydantic import ValidationError

from kappa.adapters import metrics
from kappa.adapters.job_runtime.seam import FD_API, JobRuntime, RuntimeUnavailable
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kube import ApiException, Kube, NamespaceTerminating, NotServed
from kappa.api.base import API_VERSION, GROUP, VERSION, duration
from kappa.api.conditions import ConditionUpdate, progressing, stalled
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import KafkaConnectionError, kafka_connection
from kappa.controllers.failpoints import acted, crash_at, intent
from kappa.controllers.job_runtimes import RuntimeUnconfigured
from kappa.controllers.schedule import Schedule
from kappa.controllers.status import dt, once, post_events, ts, unless_terminating
from kappa.controllers.streamjob_canary import CanaryAnalysis
from kappa.controllers.streamjob_replay import REPLAYING, ReplayUpgrade, retire_with_run
from kappa.controllers.streamjob_savepoints import SavepointHistory
from kappa.machines import cadence, canary, runtime_facts, savepoint_upgrade, upgrade
from kappa.machines.decision import Event
from kappa.machines.fko import count_restarts, deployment_view, job_update_time, kafka_topic_ready
from kappa.machines.intake import intake_streamjob
from kappa.machines.lag import LagStatus
from kappa.machines.promotion import RunSeen, live_version
from kappa.render import names
from kappa.render.flink import (
    Injection,
    StartupMode,
    UnknownVariable,
    flink_deployment,
    injection_for,
    kafka_topic,
    substitute,
    with_state,
)
from kappa.render.replay import replay_deployment, replay_retention

ROLLBACK_ANNOTATION = "kappa.dev/rollback"
INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))
"""Seconds between looks at a StreamJob while something moves that no event shows (machines/cadence.py)."""
RESYNC = float(os.environ.get("KAPPA_RESYNC_INTERVAL", "600"))
"""Seconds between looks at a StreamJob at rest, when no watch event wakes it first."""
LAG_REFRESH = float(os.environ.get("KAPPA_LAG_REFRESH", "60"))
"""A job whose lag moved is looked at (its Lag column written) at most this often."""
LOOK_WORKERS = int(os.environ.get("KAPPA_LOOK_WORKERS", "8"))
"""StreamJobs looked at concurrently by the schedule (change handlers come on top)."""
RESUME_AT_REST = 3.0
"""At start, jobs at rest are looked at this much later than the moving ones, so those go first."""
STOP_WITHIN = 2.0
GONE = math.inf
"""What a look at a StreamJob that is gone or being deleted says: no next look."""
LOG = logging.getLogger("kappa.streamjob")


def upgrade_state(status: dict[str, Any]) -> upgrade.UpgradeState:
    up = status.get("upgrade") or {}
    return upgrade.UpgradeState(
        step=up.get("step", "Idle"),
        active=status.get("activeVersion"),
        target=up.get("toVersion"),
        entered_at=dt(up.get("startedAt")),
        deadline=dt(up.get("deadline")),
        savepoint=up.get("savepoint"),
        failed_version=up.get("failedVersion"),
        healthy_since=dt(up.get("healthySince")),
        previous=up.get("previousVersion"),
        overdue=bool(up.get("overdue")),
    )


class StreamJobReconciler(CanaryAnalysis, ReplayUpgrade, SavepointHistory):
    """observe → decide (upgrade, canary, replay adoption) → record intent → act, one job at a time."""

    async def reconcile(self, namespace: str, name: str, logger: logging.Logger) -> float | None:
        obj = await self.kube.get(API_VERSION, "StreamJob", namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return GONE
        now = datetime.now(UTC)
        generation = int(obj["metadata"]["generation"])
        status: dict[str, Any] = obj.get("status") or {}
        try:
            job = StreamJobSpec.model_validate(obj["spec"])
        except ValidationError:
            invalid = intake_streamjob(obj["spec"], status, generation)
            await self._write(obj, {}, invalid.conditions, invalid.events, generation, now)
            return None  # waits for a spec change
        try:
            kafka = await kafka_connection(self.kube, job, namespace)
        except KafkaConnectionError as exc:
            # A Secret or key missing, or the credentials refused: said once, with the Secret's name.
            await self._write(
                obj,
                {},
                stalled(exc.reason, exc.message),
                once(status, exc.reason, exc.message),
                generation,
                now,
            )
            return INTERVAL
        bootstrap = kafka.bootstrap if kafka else ""
        try:
            variables = self._injection(job, namespace, name, job.version, bootstrap).variables()
            for statement in job.flink.sql or []:
                substitute(statement, variables)
        except UnknownVariable as exc:
            message = f"spec.flink.sql: {exc}"
            first = status.get("observedGeneration") != generation  # one event per spec change, not per poll
            warning = [Event("Warning", "InvalidSQL", message)] if first else []
            await self._write(obj, {}, stalled("InvalidSQL", message), warning, generation, now)
            return None  # waits for a spec change
        try:
            runtime = await self.runtimes.for_job(job, namespace, status)
        except RuntimeUnconfigured as exc:
            message = str(exc)
            said = once(status, "RuntimeUnconfigured", message)
            await self._write(obj, {}, stalled("RuntimeUnconfigured", message), said, generation, now)
            return INTERVAL
        try:
            children = await runtime.select(namespace, name)
        except RuntimeUnavailable as exc:
            # An outage reads as one: said once, in a condition and one event, until it ends.
            message = f"{exc}; retrying"
            said = once(status, "FlinkUnavailable", message)
            await self._write(
                obj, {"runtime": runtime.name}, stalled("FlinkUnavailable", message), said, generation, now
            )
            return INTERVAL
        except NotServed as exc:
            message = f"{exc}: install the Flink Kubernetes Operator"
            await self._write(
                obj,
                {"phase": "Failed"},
                stalled("FlinkOperatorMissing", message),
                once(status, "FlinkOperatorMissing", message),
                generation,
                now,
            )
            return INTERVAL
        runs = await self._runs(namespace, name)
        live = live_version(job.version, status.get("promotion"), [seen for _, _, seen in runs.values()])
        adopted = {live.version, status.get("activeVersion")}
        versions = {
            fd["metadata"]["labels"].get("kappa.dev/version"): fd
            for fd in children
            if fd["metadata"]["labels"].get("kappa.dev/role", "version") == "version"
            # A replay's deployment belongs to its run until the StreamJob adopts it after the cutover.
            or (
                fd["metadata"]["labels"].get("kappa.dev/role") == "replay"
                and fd["metadata"]["labels"].get("kappa.dev/version") in adopted
            )
        }
        canaries = {
            fd["metadata"]["labels"].get("kappa.dev/version"): fd
            for fd in children
            if fd["metadata"]["labels"].get("kappa.dev/role") == "canary"
        }
        previous = {d["version"]: d for d in status.get("deployments") or []}
        restarts = {
            v: count_restarts(
                int(previous.get(v, {}).get("restarts", 0)),
                previous.get(v, {}).get("jobState"),
                ((fd.get("status") or {}).get("jobStatus") or {}).get("state"),
                previous.get(v, {}).get("jobUpdateTime"),
                job_update_time(fd),
            )
            for v, fd in versions.items()
        }
        views = {v: deployment_view(fd, restarts=restarts[v]) for v, fd in versions.items()}
        ustate = upgrade_state(status)
        patch: dict[str, Any] = {}
        actions: list[Any] = []
        conditions = []
        events: list[Event] = []

        strategy = job.upgrade.strategy
        canary_step = (status.get("canary") or {}).get("step")
        upgrading = ustate.step not in ("Idle", "RolledBack")
        wants_canary = (
            strategy == "canary"
            and not upgrading
            and ustate.active is not None
            and job.version not in (ustate.active, ustate.failed_version)
        )
        promote, promoted = False, None
        # A promotion is over once the upgrade machine rests again: the canary goes back to Idle then.
        settling = canary_step == "Promoting" and not upgrading
        if wants_canary or settling or canary_step in ("Deploying", "Analysing"):
            cdecision, seen = await self._canary(
                job, status, ustate, canaries, kafka, now, namespace, name, upgrading
            )
            earlier = status.get("canary") or {}
            baseline = seen.baseline or earlier.get("baseline")
            seen_state, seen_restarts, seen_update = seen.job_state, seen.restarts, seen.job_update_time
            if cdecision.state.version != (status.get("canary") or {}).get("version"):
                # Another candidate: nothing seen of the one before counts for it.
                baseline, seen_state, seen_restarts, seen_update = seen.baseline, None, 0, None
            patch["canary"] = {
                "jobState": seen_state,
                "jobUpdateTime": seen_update,
                "restarts": seen_restarts,
                "baseline": baseline,
                "step": cdecision.state.step,
                "version": cdecision.state.version,
                "startedAt": ts(cdecision.state.entered_at),
                "deadline": ts(cdecision.state.deadline),
                "extensions": cdecision.state.extensions,
                "result": cdecision.state.result,
                # The judgement that ended an analysis stays visible after it, for that candidate.
                "gates": [{"name": g.name, "passed": g.passed, "message": g.message} for g in cdecision.gates]
                or (earlier.get("gates", []) if earlier.get("version") == cdecision.state.version else []),
            }
            events += cdecision.events
            actions += cdecision.actions
            conditions += cdecision.conditions
            promote = cdecision.promote
            promoted = cdecision.state.version if promote else None
            if not promote:
                await self._write(obj, patch, conditions, events, generation, now)
                self._track(job, namespace, name, kafka, [ustate.active], cdecision.state.step)
                await self._act(runtime, actions, job, obj, bootstrap, views, deployed=versions)
                return INTERVAL

        if (
            job.upgrade.strategy == "replay"
            and ustate.step == "Idle"
            and ustate.active is not None
            and live.version != ustate.active
            and not live.adopt
            and not job.suspend
        ):
            await self._replay_upgrade(obj, job, status, runs, generation, now)
            self._track(job, namespace, name, kafka, [ustate.active, job.version], None)
            return INTERVAL

        lag_growing = self._lag_growing(namespace, name, ustate.target)
        requested = (obj["metadata"].get("annotations") or {}).get(ROLLBACK_ANNOTATION)
        handled = (status.get("handledRequests") or {}).get("rollback")
        rollback_request = requested if requested and requested != handled else None
        if rollback_request:
            # Echoed whatever the outcome, so that `kubectl wait` and Argo CD can follow the request.
            patch["handledRequests"] = {**(status.get("handledRequests") or {}), "rollback": rollback_request}
        spec = upgrade.UpgradeSpec(
            promoted or live.version,  # a canary promotes the version it analysed, never another one
            duration(job.upgrade.readiness_timeout),
            duration(job.upgrade.savepoint_timeout),
            job.upgrade.max_restarts,
            stable_for=duration(job.upgrade.stable_for),
            suspend=job.suspend,
            rollback_requested=rollback_request is not None,
            adopt=live.adopt,
        )
        decision = savepoint_upgrade.decide(ustate, upgrade.Observed(views, lag_growing), spec, now)
        nxt = decision.state
        lineage = upgrade.output_versions(
            status.get("outputVersions") or {}, ustate.active, nxt.active, nxt.target
        )
        serving = nxt.target or nxt.active
        if serving and not job.suspend:
            replayed = runs.get(serving)
            topic_ok, topic_why = await self._ensure_topic(
                job, obj, lineage.get(serving, serving), replayed[1] if replayed else None
            )
            if not topic_ok and any(c.type == "Ready" and c.status for c in decision.conditions):
                failed = any(w in topic_why for w in ("Ready=False", "not served", "cannot be created"))
                held = (
                    stalled("OutputTopicFailed", topic_why)
                    if failed
                    else progressing("OutputNotReady", topic_why)
                )
                decision = dataclasses.replace(decision, conditions=held)
        events += decision.events
        actions += decision.actions
        conditions = decision.conditions
        patch |= self._status(job, status, ustate, decision, views, versions, now, namespace, name)
        plan, said = self._plan_savepoints(
            patch["savepoints"], nxt, sorted(versions), [seen for _, _, seen in runs.values()], now
        )
        patch["savepoints"] = plan.kept  # disposals decided here are carried out after the write
        events += said
        patch["outputVersions"] = lineage  # recorded before a version is deployed to write it
        patch["runtime"] = runtime.name
        if live.record:
            patch["promotion"] = live.record
            retire_with_run(patch, live.record)
        down = self.lag.unreachable(kafka)
        if down:  # one message per outage, so its Warning is one event series
            conditions = [*conditions, ConditionUpdate("KafkaReachable", False, "KafkaUnreachable", down)]
            events = [*events, Event("Warning", "KafkaUnreachable", down)]
        elif kafka and self.lag.monitors.get(kafka):
            answers = f"Kafka at {bootstrap} answers"
            conditions = [*conditions, ConditionUpdate("KafkaReachable", True, "KafkaAnswers", answers)]
        await self._write(obj, patch, conditions, events, generation, now)
        canary_step = (patch.get("canary") or status.get("canary") or {}).get("step")
        replaying = [seen.to_version for _, _, seen in runs.values() if seen.phase in REPLAYING]
        self._track(job, namespace, name, kafka, [nxt.active, nxt.target, *replaying], canary_step)
        try:
            await self._act(runtime, actions, job, obj, bootstrap, views, runs, deployed=versions)
        except RuntimeUnavailable as exc:
            message = f"{exc}; retrying"
            await self._write(
                obj,
                {},
                stalled("FlinkUnavailable", message),
                once(status, "FlinkUnavailable", message),
                generation,
                now,
            )
            return INTERVAL
        except ApiException as exc:
            message = f"the API server refused a child: {_api_message(exc)}"
            await self._write(
                obj,
                {},
                stalled("ChildRejected", message),
                once(status, "ChildRejected", message),
                generation,
                now,
            )
            return INTERVAL
        await self._retire(runtime, obj, status, namespace, now)
        # Through the active version's deployment, while it runs and no upgrade is under way.
        steady = nxt.step == "Idle" and nxt.active in views and views[nxt.active].job_state == "RUNNING"
        await self._dispose_savepoints(runtime, obj, plan, nxt.active if steady else None, generation, now)
        moving = cadence.Moving(
            watched_runtime=runtime.name == "FlinkDeployment" and self.deployments is not None,
            step=nxt.step,
            requeue_after=decision.requeue_after,
            ready=any(c.type == "Ready" and c.status for c in conditions),
            canary=canary_step in ("Deploying", "Analysing", "Promoting"),
            replaying=bool(replaying),
            acting=bool(actions),
            disposing=bool(plan.dispose),
            kafka_down=bool(down),
        )
        retiring = [at for d in patch["deployments"] if (at := dt(d.get("retireAt"))) is not None]
        return cadence.next_look(moving, retiring, now, interval=INTERVAL, resync=RESYNC)

    def _track(
        self,
        job: StreamJobSpec,
        namespace: str,
        name: str,
        kafka: KafkaConnection | None,
        versions: list[str | None],
        canary_step: str | None,
    ) -> None:
        """The lag poll follows the active and target versions' groups, and the canary's while it runs."""
        if not kafka:
            return
        tracked = {v for v in versions if v}
        if canary_step in ("Deploying", "Analysing"):
            tracked.add(f"{job.version}-canary")
        self.lag.retain(namespace, name, {names.consumer_group(namespace, name, v) for v in tracked})
        for version in sorted(tracked):
            labels = {"namespace": namespace, "job": name, "version": version}
            self.lag.track(
                kafka, names.consumer_group(namespace, name, version), list(job.source.topics), labels
            )

    def _lag_growing(self, namespace: str, name: str, version: str | None) -> bool:
        if not version:
            return False
        found = self.lag.latest(names.consumer_group(namespace, name, version))
        return found is not None and found.status.status in (LagStatus.WARN, LagStatus.STOP)

    def _status(
        self,
        job: StreamJobSpec,
        status: dict[str, Any],
        before: upgrade.UpgradeState,
        decision: upgrade.UpgradeDecision,
        views: dict[str, runtime_facts.Deployment],
        versions: dict[str, Any],
        now: datetime,
        namespace: str,
        name: str,
    ) -> dict[str, Any]:
        nxt = decision.state
        window = duration(job.upgrade.rollback_window)
        deployments = []
        old = {d["version"]: d for d in status.get("deployments") or []}
        for version, view in sorted(views.items()):
            role = "active" if version == nxt.active else "target" if version == nxt.target else "previous"
            entry: dict[str, Any] = {
                "version": version,
                "deployment": names.deployment_name(name, version),
                "role": role,
                "jobState": view.job_state,
                "lifecycleState": view.lifecycle,
                "restarts": view.restarts,
                "jobUpdateTime": job_update_time(versions.get(version)),
            }
            if role == "previous":
                entry["retireAt"] = old.get(version, {}).get("retireAt") or ts(now + window)
            deployments.append({k: v for k, v in entry.items() if v is not None})
        savepoints = list(status.get("savepoints") or [])
        if nxt.savepoint and nxt.savepoint not in {s["path"] for s in savepoints} and before.active:
            reason = "Suspend" if job.suspend and nxt.step == "Idle" else "Upgrade"
            savepoints.append(
                {"version": before.active, "path": nxt.savepoint, "takenAt": ts(now), "reason": reason}
            )
        history = list(status.get("history") or [])
        if nxt.active != before.active and nxt.active:
            history.append({"version": nxt.active, "outcome": "Active", "at": ts(now)})
            if before.active:
                history.append({"version": before.active, "outcome": "Superseded", "at": ts(now)})
        if nxt.step == "RolledBack" and before.step != "RolledBack" and nxt.failed_version:
            metrics.streamjob_rollbacks.labels(namespace, name).inc()
            history.append({"version": nxt.failed_version, "outcome": "RolledBack", "at": ts(now)})
        phase = {
            "Idle": "Running",
            "Savepointing": "Upgrading",
            "Starting": "Deploying" if not nxt.active else "Upgrading",
            "RollingBack": "RollingBack",
            "RolledBack": "Running",
        }[nxt.step]
        if nxt.step == "Idle" and nxt.failed_version == job.version:
            phase = "Failed"
        if nxt.step == "Idle" and job.suspend:
            phase = "Suspended"
        group = names.consumer_group(namespace, name, nxt.active) if nxt.active else None
        polled = self.lag.latest(group) if group else None
        metrics.set_active_version(namespace, name, nxt.active)
        return {
            "lag": polled.total if polled else None,  # the Lag column; None until the first poll
            "phase": phase,
            "activeVersion": nxt.active,
            "stableVersion": nxt.active if nxt.step == "Idle" else status.get("stableVersion"),
            "consumerGroup": group,
            "deployments": deployments,
            "savepoints": savepoints,  # bounded by _plan_savepoints (streamjob_savepoints.py)
            "history": history[-64:],
            "upgrade": {
                "step": nxt.step,
                "fromVersion": nxt.active,
                "toVersion": nxt.target,
                "startedAt": ts(nxt.entered_at),
                "deadline": ts(nxt.deadline),
                "savepoint": nxt.savepoint,
                "failedVersion": nxt.failed_version,
                "healthySince": ts(nxt.healthy_since),
                "previousVersion": nxt.previous,
                "overdue": nxt.overdue or None,
                # The last judgement stays visible after the step that made it.
                "gates": [
                    {"name": g.name, "passed": g.passed, "message": g.message[:1024]} for g in decision.gates
                ]
                or (status.get("upgrade") or {}).get("gates", []),
            },
        }

    def _injection(
        self,
        job: StreamJobSpec,
        namespace: str,
        name: str,
        version: str,
        bootstrap: str,
        *,
        canary_of: str | None = None,
        output_version: str | None = None,
    ) -> Injection:
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

    async def _act(
        self,
        runtime: JobRuntime,
        actions: list[Any],
        job: StreamJobSpec,
        obj: dict[str, Any],
        bootstrap: str,
        views: dict[str, runtime_facts.Deployment],
        runs: dict[str, tuple[str, ReplayRunSpec, RunSeen]] | None = None,
        deployed: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """`deployed`: the versions' deployments as they are, by version."""
        deployed = deployed or {}
        meta = obj["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        lineage: dict[str, str] = (obj.get("status") or {}).get("outputVersions") or {}  # written first
        for action in actions:
            replayed = (runs or {}).get(getattr(action, "version", ""))
            if isinstance(action, upgrade.Apply) and replayed and not action.initial_savepoint:
                # Rendered as its run deployed it: adoption must not look like a spec change to FKO.
                run_name, run, _ = replayed
                await runtime.apply(
                    replay_deployment(
                        namespace=namespace,
                        job_name=name,
                        job_uid=uid,
                        job=job,
                        run_name=run_name,
                        run=run,
                        bootstrap_servers=bootstrap,
                        state=action.state,
                    )
                )
            elif (
                isinstance(action, upgrade.Apply)
                and action.version != job.version
                and action.version in deployed
            ):
                # Another version than spec's (the one being replaced, or rolled back to): as it was deployed.
                await runtime.apply(
                    with_state(
                        deployed[action.version],
                        state=action.state,
                        initial_savepoint_path=action.initial_savepoint,
                    )
                )
            elif isinstance(action, upgrade.Apply):
                fd = flink_deployment(
                    namespace=namespace,
                    job=name,
                    owner_uid=uid,
                    spec=job,
                    injection=self._injection(
                        job,
                        namespace,
                        name,
                        action.version,
                        bootstrap,
                        output_version=lineage.get(action.version),
                    ),
                    state=action.state,
                    initial_savepoint_path=action.initial_savepoint,
                )
                await runtime.apply(fd)
            elif isinstance(action, upgrade.Delete):
                await runtime.delete(namespace, names.deployment_name(name, action.version))
            elif isinstance(action, canary.DeployCanary):
                fd = flink_deployment(
                    namespace=namespace,
                    job=name,
                    owner_uid=uid,
                    spec=job,
                    injection=self._injection(
                        job, namespace, name, action.version, bootstrap, canary_of=action.version
                    ),
                )
                fd["metadata"]["name"] = f"{names.deployment_name(name, action.version)}-canary"
                fd["metadata"]["labels"]["kappa.dev/role"] = "canary"
                await runtime.apply(fd)
            elif isinstance(action, canary.RemoveCanary):
                await runtime.delete(namespace, f"{names.deployment_name(name, action.version)}-canary")
            acted("streamjob", namespace, name)  # a failpoint after each side effect (failpoints.py)

    async def _ensure_topic(
        self, job: StreamJobSpec, obj: dict[str, Any], version: str, run: ReplayRunSpec | None = None
    ) -> tuple[bool, str]:
        """Apply the version's KafkaTopic (idempotent, from spec alone) and say whether it is ready."""
        if not job.output.topic or not job.source.kafka.cluster_ref:
            return True, "no Strimzi topic"  # direct backend: the sink, or the Kafka adapter, creates it
        api = await self.kube.preferred("KafkaTopic", ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"])
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
            applied = await self.kube.apply(topic)
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise
            # The Kafka cluster's namespace is missing, or closed to the operator: the user's to fix.
            return False, (
                f"KafkaTopic {topic['metadata']['name']} cannot be created in namespace "
                f"{topic['metadata']['namespace']} (spec.source.kafka.namespace): {_api_message(exc)}"
            )
        ok, why = kafka_topic_ready(applied)
        return ok, f"KafkaTopic {topic['metadata']['name']}: {why}"

    async def _retire(
        self, runtime: JobRuntime, obj: dict[str, Any], status: dict[str, Any], namespace: str, now: datetime
    ) -> None:
        """Previous versions stay suspended, ready for rollback, until their window ends; savepoints stay.
        Said once, by the look whose delete removed the deployment."""
        for entry in status.get("deployments") or []:
            retire_at = dt(entry.get("retireAt"))
            if entry.get("role") == "previous" and retire_at and now >= retire_at:
                crash_at("streamjob:Retire", namespace, entry["deployment"])
                if await runtime.delete(namespace, entry["deployment"]):
                    # Through the operator's recorder: a look runs outside any Kopf handler (kopf.event
                    # needs a handler's context, and raised LookupError in the schedule's looks).
                    message = (
                        f"{entry['version']}: rollback window over, {entry['deployment']} deleted "
                        "(its savepoints stay)"
                    )
                    post_events(obj, [Event("Normal", "PreviousVersionRetired", message)])
                crash_at("streamjob:Retire:1", namespace, entry["deployment"])

    async def finalize(self, namespace: str, name: str) -> bool:
        """One step of deletion; True when the object may go. Then the runtime stops whatever the garbage
        collector would not (a session cluster's jobs)."""
        obj = await self.kube.get(API_VERSION, "StreamJob", namespace, name)
        if obj is None:
            return True
        body = kopf.Body(cast(kopf.RawBody, obj))
        try:
            job = StreamJobSpec.model_validate(obj["spec"])
            runtime = await self.runtimes.for_job(job, namespace, obj.get("status") or {})
        except (ValidationError, RuntimeUnconfigured) as exc:
            kopf.event(
                body,
                type="Warning",
                reason="FinalSavepointSkipped",
                message=f"no final savepoint could be asked for: the spec is invalid ({str(exc)[:200]})",
            )
            return True
        asked = dt(obj["metadata"]["deletionTimestamp"]) or datetime.now(UTC)
        status = obj.get("status") or {}
        saved = False
        try:
            if not await self._final_savepoint(runtime, obj, job, asked):
                return False
            saved = True
            await runtime.release(namespace, name)
            return True
        except RuntimeUnavailable as exc:
            # An outage: wait for it up to savepointTimeout, unless no version ever ran (nothing to keep).
            never = _never_ran(status)
            if not never and datetime.now(UTC) - asked <= duration(job.upgrade.savepoint_timeout):
                return False
            left = await runtime.release(namespace, name, abandon=True)
            if not saved:
                reason = "FinalSavepointSkipped" if never else "FinalSavepointFailed"
                what = f"{status.get('activeVersion')} never ran" if never else "giving up"
                kopf.event(body, type="Warning", reason=reason, message=f"{exc}; {what}")
            if left:
                message = f"{exc}: cancel there what may still run: job {', '.join(left)}"
                kopf.event(body, type="Warning", reason="JobsLeftRunning", message=message)
            return True

    async def _final_savepoint(
        self, runtime: JobRuntime, obj: dict[str, Any], job: StreamJobSpec, asked: datetime
    ) -> bool:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        status: dict[str, Any] = obj.get("status") or {}
        active = status.get("activeVersion")
        body = kopf.Body(cast(kopf.RawBody, obj))
        if not active:
            starting = (status.get("upgrade") or {}).get("toVersion")
            if starting:
                message = f"{starting} was not active yet: only an active version's state is kept"
                kopf.event(body, type="Normal", reason="FinalSavepointSkipped", message=message)
            return True
        fd = await runtime.get(namespace, names.deployment_name(name, active))
        if fd is None:
            return True
        view = deployment_view(fd)
        if view.job_state in NOT_STARTED and _never_ran(status):
            # FKO takes no savepoint of a job that is not running (it would wait for one, as we would).
            message = f"{active} never ran: no state to keep"
            kopf.event(body, type="Normal", reason="FinalSavepointSkipped", message=message)
            return True
        if view.desired_state != "suspended":
            intent("streamjob", namespace, name, ["Finalizing"])  # deletionTimestamp is the intent
            try:
                await self._act(
                    runtime,
                    [upgrade.Apply(active, "suspended")],
                    job,
                    obj,
                    job.source.kafka.bootstrap_servers or "",
                    {active: view},
                    deployed={active: fd},
                )
            except (UnknownVariable, ApiException) as exc:
                # Deletion must not hang on a deployment that cannot be rendered or is refused.
                kopf.event(
                    body,
                    type="Warning",
                    reason="FinalSavepointSkipped",
                    message=f"could not ask {active} for a final savepoint: {exc}",
                )
                return True
            return False
        fresh = view.savepoint_at is None or view.savepoint_at >= asked - timedelta(seconds=1)
        # Suspended before the deletion (spec.suspend): its suspension's savepoint is its last state, and
        # FKO takes no other of a job that is not running.
        stopped = view.job_state in ("FINISHED", "SUSPENDED") or view.lifecycle == "SUSPENDED"
        if view.upgrade_savepoint_path and (fresh or stopped):
            path = view.upgrade_savepoint_path
            await self._record_final_savepoint(obj, active, path)
            self.lag.untrack(names.consumer_group(namespace, name, active))
            return True
        if view.job_state in ("FAILED", "CANCELED") or stopped:
            # Nothing runs that could take a savepoint: waiting for one would only hold the deletion.
            kopf.event(
                body,
                type="Warning",
                reason="FinalSavepointSkipped",
                message=f"{active}'s job is {view.job_state}: no final savepoint can be taken",
            )
            return True
        if datetime.now(UTC) - asked > duration(job.upgrade.savepoint_timeout):
            message = (
                f"no final savepoint of {active} within {job.upgrade.savepoint_timeout}: {view.error or ''}"
            )
            kopf.event(
                kopf.Body(cast(kopf.RawBody, obj)),
                type="Warning",
                reason="FinalSavepointFailed",
                message=message,
            )
            return True
        return False

    async def _record_final_savepoint(self, obj: dict[str, Any], version: str, path: str) -> None:
        """In status, in an event, and as a FlinkStateSnapshot that outlives the StreamJob (its history)."""
        meta = obj["metadata"]
        savepoints = list((obj.get("status") or {}).get("savepoints") or [])
        if path not in {s["path"] for s in savepoints}:
            savepoints.append(
                {"version": version, "path": path, "takenAt": ts(datetime.now(UTC)), "reason": "Final"}
            )
            await self.kube.patch_status(
                API_VERSION,
                "StreamJob",
                meta["namespace"],
                meta["name"],
                {"savepoints": savepoints[-32:], "phase": "Suspended"},
            )
            crash_at("streamjob:FinalSavepoint", meta["namespace"], meta["name"])
        snapshot = {
            "apiVersion": FD_API,
            "kind": "FlinkStateSnapshot",
            "metadata": {
                "name": f"{names.deployment_name(meta['name'], version)}-final",
                "namespace": meta["namespace"],
                "labels": {
                    "app.kubernetes.io/managed-by": "kappa-operator",
                    "kappa.dev/job": meta["name"],
                    "kappa.dev/version": version,
                    "kappa.dev/savepoint": "final",
                },
            },
            "spec": {
                "jobReference": {
                    "kind": "FlinkDeployment",
                    "name": names.deployment_name(meta["name"], version),
                },
                "savepoint": {"path": path, "alreadyExists": True, "disposeOnDelete": False},
            },
        }
        if (obj.get("status") or {}).get("runtime", "FlinkDeployment") == "FlinkDeployment":
            # An FKO without FlinkStateSnapshot, or a namespace being deleted: the event is the record.
            with contextlib.suppress(NotServed, NamespaceTerminating):
                await self.kube.apply(snapshot)
        crash_at("streamjob:FinalSavepoint:1", meta["namespace"], meta["name"])
        kopf.event(
            kopf.Body(cast(kopf.RawBody, obj)),
            type="Normal",
            reason="FinalSavepoint",
            message=f"final savepoint of {version}: {path}",
        )


FINALIZE_LOOKS = 30

NOT_STARTED = frozenset({None, "RECONCILING", "CREATED", "INITIALIZING"})
"""Job states seen before a job has processed anything (FKO sets RECONCILING at submit)."""


def _never_ran(status: dict[str, Any]) -> bool:
    """Nothing of the active version's job was ever seen running: no state a final savepoint could keep."""
    active = status.get("activeVersion")
    if not active:
        return True
    seen = [d.get("jobState") for d in status.get("deployments") or [] if d.get("version") == active]
    saved = any(s.get("version") == active for s in status.get("savepoints") or [])
    return all(state in NOT_STARTED for state in seen) and not saved and status.get("stableVersion") != active


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


def _reconciler(memo: kopf.Memo) -> StreamJobReconciler:
    if not hasattr(memo, "streamjobs"):
        memo.streamjobs = StreamJobReconciler(Kube(), memo.lag)
        memo.streamjob_locks = {}
    return memo.streamjobs  # type: ignore[no-any-return]


@kopf.on.startup()
async def share_streamjob_reconciler(memo: kopf.Memo, **indexes: Any) -> None:
    """Built on the operator's memo before any handler runs. Kopf gives each object a shallow copy of that
    memo: built there, one reconciler (one API client, one lock table, one schedule) serves every StreamJob;
    built from a handler, it would live in that object's copy, one client per object. It reads the job's
    deployments and runs from the watch-fed indexes (controllers/watches.py)."""
    deployments: kopf.Index[Hashable, Any] = indexes["flinkdeployments_by_job"]
    runs: kopf.Index[Hashable, Any] = indexes["replayruns_by_job"]
    reconciler = StreamJobReconciler(Kube(), memo.lag, deployments, runs)
    memo.streamjobs = reconciler
    memo.streamjob_locks = {}
    memo.streamjob_schedule = reconciler.schedule
    memo.streamjob_annotations = {}
    memo.deployment_facts = {}
    memo.streamjobs_resting = set()
    memo.lag.on_change = _lag_moved(reconciler.schedule)
    metrics.watch_schedule("StreamJob", reconciler.schedule)
    looks = reconciler.schedule.run(functools.partial(_look, memo), LOOK_WORKERS)
    memo.streamjob_looks = asyncio.create_task(looks, name="kappa-streamjob-looks")


@kopf.on.cleanup()
async def stop_streamjob_looks(memo: kopf.Memo, **_: Any) -> None:
    """Looks under way are cancelled: what they wrote is written, and the next start looks at all again."""
    task: asyncio.Task[None] | None = getattr(memo, "streamjob_looks", None)
    if task is not None:
        task.cancel()
        await asyncio.wait([task], timeout=STOP_WITHIN)


def _lag_moved(schedule: Schedule) -> Callable[[str, str, bool], None]:
    """The lag poll saw a job's lag move (a new Lag column) or its verdict or Kafka's reachability change."""

    def moved(namespace: str, job: str, urgent: bool) -> None:
        if urgent:
            schedule.wake((namespace, job))
        else:
            schedule.nudge((namespace, job), LAG_REFRESH)

    return moved


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> float:
    """One reconcile at a time per StreamJob: looks and change handlers must not interleave. Each look says
    when the next is due (machines/cadence.py); a failed one asks again after INTERVAL."""
    reconciler = _reconciler(memo)
    lock = memo.streamjob_locks.setdefault((namespace, name), asyncio.Lock())
    following = INTERVAL
    try:
        async with lock:
            with metrics.reconciling("StreamJob"), unless_terminating():
                found = await reconciler.reconcile(namespace, name, LOG)
                following = RESYNC if found is None else found
    finally:
        if following == GONE:  # deleted, or being deleted: finalize_streamjob is on it
            reconciler.schedule.forget((namespace, name))
        else:
            reconciler.schedule.after((namespace, name), following)
        # At rest (nothing moving: the next look is the resync or a retirement), a periodic checkpoint of
        # its deployment does not wake it (controllers/watches.py).
        resting: set[tuple[str, str]] = memo.streamjobs_resting
        (resting.add if INTERVAL < following != GONE else resting.discard)((namespace, name))
    return following


_failing: dict[tuple[str, str], str] = {}


async def _look(memo: kopf.Memo, key: Hashable) -> float:
    """A look the schedule asked for. A failing look is logged when its error changes, not at each retry."""
    namespace, name = cast(tuple[str, str], key)
    try:
        following = await _locked(memo, namespace, name)
    except Exception as exc:  # the schedule must outlive any one look
        if _failing.get((namespace, name)) != str(exc):
            LOG.exception("StreamJob %s/%s: a look failed; retrying every %.0fs", namespace, name, INTERVAL)
        _failing[(namespace, name)] = str(exc)
        return INTERVAL
    if _failing.pop((namespace, name), None) is not None:
        LOG.info("StreamJob %s/%s: looking at it works again", namespace, name)
    return following


@kopf.on.create(GROUP, VERSION, "streamjobs")
@kopf.on.update(GROUP, VERSION, "streamjobs", field="spec")
async def reconcile_streamjob(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    """A new StreamJob and a spec change are looked at at once; the look puts the job on the schedule,
    which carries out the later ones."""
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.on.resume(GROUP, VERSION, "streamjobs")
async def resume_streamjob(meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """At start every StreamJob is looked at once, through the schedule, in order of urgency: a job in the
    middle of something (an upgrade, a rollback, a canary, a replay, not ready) before the jobs at rest."""
    _reconciler(memo).schedule.after((str(meta["namespace"]), str(meta["name"])), resume_delay(status))


def resume_delay(status: Mapping[str, Any]) -> float:
    """Seconds from start to the first look: none for a job that is moving, a little for one at rest."""
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    step = (status.get("upgrade") or {}).get("step", "Idle")
    resting = status.get("phase") in ("Running", "Suspended") and step in ("Idle", "RolledBack")
    canary = (status.get("canary") or {}).get("step") in ("Deploying", "Analysing", "Promoting")
    return RESUME_AT_REST if ready and resting and not canary else 0.0


@kopf.on.delete(GROUP, VERSION, "streamjobs")
async def finalize_streamjob(meta: kopf.Meta, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Deletion takes a final savepoint of the active version and records it; then the finalizer goes and the
    garbage collector removes the deployments. Outputs stay unless spec.output.deletionPolicy is Delete."""
    namespace, name = str(meta["namespace"]), str(meta["name"])
    reconciler = _reconciler(memo)
    # Looks every 2 s, but hands back to Kopf (which logs each retry as an error) once a minute only.
    for _look in range(FINALIZE_LOOKS):
        async with memo.streamjob_locks.setdefault((namespace, name), asyncio.Lock()):
            if await reconciler.finalize(namespace, name):
                # Its groups (a version that never became active too) leave the lag poll, and their series.
                reconciler.lag.retain(namespace, name, set())
                metrics.forget_streamjob(namespace, name)
                reconciler.schedule.forget((namespace, name))
                memo.streamjob_annotations.pop((namespace, name), None)
                _failing.pop((namespace, name), None)
                return
        await asyncio.sleep(2)
    raise kopf.TemporaryError("waiting for the final savepoint", delay=2)
