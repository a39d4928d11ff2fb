"""ReplayRuns: observe (the StreamJob, Kafka, the replay deployment, the view) → decide (machines/replay.py) →
record intent in status → act (seed the group, create the output, set the quota, deploy; cut over; clean up)
→ events. Level-triggered: create, resume, spec or annotation change, and a timer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, AliasMoved
from kappa.adapters.kafka import KafkaAdapterError, KafkaAdmin, Partition
from kappa.adapters.kube import ApiException, Kube, NotServed
from kappa.adapters.quota import ClientQuotas, average_record_bytes, bytes_quota
from kappa.adapters.serving import Unsupported
from kappa.api.base import API_VERSION, GROUP, VERSION, duration
from kappa.api.conditions import ConditionUpdate, progressing, stalled
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import ViewUnavailable, bootstrap_servers, open_view, physical_name
from kappa.controllers.failpoints import crash_at
from kappa.controllers.lag import LagTracking
from kappa.controllers.status import dt, once, requested, ts, write_status
from kappa.machines import replay, validation
from kappa.machines.decision import Event
from kappa.machines.fko import deployment_view
from kappa.machines.intake import intake_replayrun
from kappa.machines.preflight import Check, ReplayPlan, fell_off_retention, preflight
from kappa.machines.upgrade import Deployment
from kappa.render import names
from kappa.render.flink import kafka_topic, kafka_topic_name
from kappa.render.replay import output_table, output_topic, replay_deployment, replay_retention

log = logging.getLogger(__name__)
FD_API = "flink.apache.org/v1beta1"
APPROVE, ABORT, ROLLBACK = "kappa.dev/approve", "kappa.dev/abort", "kappa.dev/rollback"
INTERVAL = float(os.environ.get("KAPPA_RECONCILE_INTERVAL", "10"))
ACTIVE = frozenset(replay.BEFORE_CUTOVER | {"CuttingOver", "Observing"})


def replay_state(status: dict[str, Any]) -> replay.ReplayState:
    cut = status.get("cutover") or {}
    return replay.ReplayState(
        phase=status.get("phase") or "Pending",
        entered_at=dt(status.get("enteredAt")),
        deadline=dt(status.get("phaseDeadline")),
        caught_up_since=dt(status.get("caughtUpSince")),
        cutover_from=cut.get("fromVersion"),
        cutover_to=cut.get("toVersion"),
        cut_over_at=dt(cut.get("at")),
        reason=status.get("reason"),
    )


def replay_spec(run: ReplayRunSpec, view: str | None) -> replay.ReplaySpec:
    t = run.timeouts
    return replay.ReplaySpec(
        version=run.version,
        view=view,
        bounded=not run.until.live,
        approval=run.approval,
        max_lag_records=run.catch_up.max_lag_records,
        stable_for=duration(run.catch_up.stable_for),
        rollback_window=duration(run.rollback_window),
        timeouts={
            "Preflight": duration(t.preflight),
            "Replaying": duration(t.replaying),
            "CatchingUp": duration(run.catch_up.timeout),
            "Validating": duration(run.validation.timeout),
            "AwaitingApproval": duration(t.awaiting_approval),
            "CuttingOver": duration(t.cutting_over),
        },
    )


def _offsets(entries: list[dict[str, Any]] | None) -> dict[Partition, int]:
    return {(e["topic"], int(e["partition"])): int(e["offset"]) for e in entries or []}


def _entries(offsets: dict[Partition, int]) -> list[dict[str, Any]]:
    return [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(offsets.items())]


def _eta(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@dataclass
class Context:
    """Everything one reconcile of one run has read."""

    obj: dict[str, Any]
    run: ReplayRunSpec
    job_obj: dict[str, Any]
    job: StreamJobSpec
    bootstrap: str
    view_name: str | None
    view_obj: dict[str, Any] | None
    view_spec: MaterializedViewSpec | None
    now: datetime
    patch: dict[str, Any] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def job_name(self) -> str:
        return self.run.job_ref.name

    @property
    def status(self) -> dict[str, Any]:
        return self.obj.get("status") or {}

    @property
    def group(self) -> str:
        return names.consumer_group(self.namespace, self.job_name, self.run.version)

    @property
    def deployment(self) -> str:
        return names.deployment_name(self.job_name, self.run.version)

    @property
    def parallelism(self) -> int:
        return _parallelism(self.job, self.run)

    def physical(self, version: str | None) -> str | None:
        """What the view reads for a version; the run's own output for the replayed version."""
        if version is None or self.view_spec is None:
            return None
        if version == self.run.version:
            if self.view_spec.backend.type == "postgres":
                return output_table(self.job, self.run)
            return output_topic(self.job, self.run)
        return physical_name(self.job, self.view_spec, version)

    def version_of(self, physical: str | None, candidates: list[str | None]) -> str | None:
        if physical is None:
            return None
        for version in candidates:
            if version and self.physical(version) == physical:
                return version
        return f"({physical})"  # not a version of this job: it matches no precondition


class ReplayRunReconciler:
    def __init__(self, kube: Kube, lag: LagTracking) -> None:
        self.kube = kube
        self.lag = lag

    # -- observe → decide → write → act ---------------------------------------------------------------

    async def reconcile(self, namespace: str, name: str) -> None:
        obj = await self.kube.get(API_VERSION, "ReplayRun", namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        now = datetime.now(UTC)
        generation = int(obj["metadata"]["generation"])
        status: dict[str, Any] = obj.get("status") or {}
        try:
            run = ReplayRunSpec.model_validate(obj["spec"])
        except ValidationError:
            invalid = intake_replayrun(obj["spec"], status, generation)
            await self._write(obj, {}, invalid.conditions, invalid.events, now)
            return
        state = replay_state(status)
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, run.job_ref.name)
        aborting_kept = (
            state.phase == "Failed"
            and state.reason in replay.KEPT_FOR_INSPECTION
            and bool((obj["metadata"].get("annotations") or {}).get(ABORT))
        )
        if state.phase in replay.FINAL and not aborting_kept:
            await self._finish(obj, run, job_obj, state, now)
            return
        first = (
            []
            if status.get("observedGeneration") == generation
            else intake_replayrun(obj["spec"], status, generation).events
        )  # "Accepted", once per spec
        if job_obj is None:
            # Argo CD may apply the run before its StreamJob: wait for it (Preflight's deadline starts later).
            message = f"waiting for StreamJob {run.job_ref.name} (spec.jobRef.name) in {namespace}"
            await self._write(obj, {"phase": state.phase}, progressing("WaitingForJob", message), first, now)
            return
        try:
            job = StreamJobSpec.model_validate(job_obj["spec"])
        except ValidationError:
            message = f"StreamJob {run.job_ref.name} has an invalid spec; see its Stalled condition"
            await self._write(obj, {"phase": state.phase}, stalled("JobInvalid", message), [], now)
            return
        bootstrap = await bootstrap_servers(self.kube, job, namespace)
        view_name = job.output.view if run.until.live else None
        view_obj = (
            await self.kube.get(API_VERSION, "MaterializedView", namespace, view_name) if view_name else None
        )
        view_spec = None
        if view_obj is not None:
            with contextlib.suppress(ValidationError):
                view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
        ctx = Context(obj, run, job_obj, job, bootstrap, view_name, view_obj, view_spec, now)
        ctx.patch["view"] = view_name
        if not bootstrap:
            message = "the StreamJob's Kafka bootstrap servers are unknown (spec.source.kafka)"
            await self._write(obj, {"phase": state.phase}, stalled("KafkaUnknown", message), [], now)
            return
        admin = self.lag.monitor(bootstrap).admin
        seen = await self._observe(ctx, state, admin)
        spec = replay_spec(run, view_name)
        decision = replay.decide(state, seen, spec, now)
        self._record(ctx, decision, seen)
        events = [*first, *decision.events]
        if decision.state.phase != state.phase and not decision.events:  # every transition is an event
            events.append(Event("Normal", decision.state.phase, f"{state.phase} → {decision.state.phase}"))
        await self._write(obj, ctx.patch, decision.conditions, events, now)
        if decision.state.phase != state.phase:
            crash_at("replay-transition", f"{namespace}/{name} {state.phase}->{decision.state.phase}")
        self._track(ctx, decision.state.phase)
        await self._act(ctx, decision.actions, admin)
        self._export(ctx, decision.state.phase)

    async def _observe(
        self, ctx: Context, state: replay.ReplayState, admin: KafkaAdmin
    ) -> replay.ReplayObserved:
        seen: dict[str, Any] = {}
        phase = state.phase
        # Approve and abort hold while their annotation is there (an early approve counts at the approval);
        # a rollback is a one-off request, acted on only when new. Every id seen is echoed into status.
        annotations = ctx.obj["metadata"].get("annotations") or {}
        approve, abort = annotations.get(APPROVE), annotations.get(ABORT)
        rollback = requested(ctx.obj, ROLLBACK, "rollback")
        handled = dict(ctx.status.get("handledRequests") or {})
        for key, value in (("approve", approve), ("abort", abort), ("rollback", rollback)):
            if value:
                handled[key] = value
        if handled != (ctx.status.get("handledRequests") or {}):
            ctx.patch["handledRequests"] = handled
        seen |= {"approve": bool(approve), "abort": bool(abort), "rollback": rollback is not None}
        if phase == "Pending":
            seen["holder"] = await self._holder(ctx)
        elif phase == "Preflight":
            seen["preflight"] = await self._preflight(ctx, admin)
        if phase in ("Replaying", "CatchingUp"):
            fd = await self.kube.get(FD_API, "FlinkDeployment", ctx.namespace, ctx.deployment)
            seen["replay"] = deployment_view(fd) if fd else Deployment(exists=False)
            seen |= await self._progress(ctx, admin)
        if phase == "CatchingUp":
            found = self.lag.latest(ctx.group)
            if found is not None:
                lags = [found.lag_of(t, p) for (t, p) in _offsets(ctx.status.get("startOffsets"))]
                seen["max_partition_lag"] = max(lags, default=0)
                seen["lag_status"] = found.status.status
        if phase == "Validating":
            seen["validation"] = await self._validate(ctx)
        if phase in ("Validating", "AwaitingApproval", "CuttingOver", "Observing") and ctx.view_spec:
            seen |= await self._alias(ctx, state)
        if phase == "Observing" and state.cutover_from:
            previous = names.deployment_name(ctx.job_name, state.cutover_from)
            fd = await self.kube.get(FD_API, "FlinkDeployment", ctx.namespace, previous)
            seen["previous_exists"] = fd is not None
            savepoint = deployment_view(fd).upgrade_savepoint_path if fd else None
            cut = dict(ctx.status.get("cutover") or {})
            if savepoint and cut.get("previousSavepoint") != savepoint:
                ctx.patch["cutover"] = {**cut, "previousSavepoint": savepoint}
        return replay.ReplayObserved(**seen)

    def _record(self, ctx: Context, decision: replay.ReplayDecision, seen: replay.ReplayObserved) -> None:
        """The decided state, and the intent of its actions, into the status patch."""
        nxt = decision.state
        before = ctx.status.get("phase") or "Pending"
        ctx.patch |= {
            "phase": nxt.phase,
            "reason": nxt.reason,
            "enteredAt": ts(nxt.entered_at),
            "phaseDeadline": ts(nxt.deadline),
            "caughtUpSince": ts(nxt.caught_up_since),
            "consumerGroup": ctx.group,
            "deployment": ctx.deployment,
            "output": {"topic": output_topic(ctx.job, ctx.run), "table": output_table(ctx.job, ctx.run)},
        }
        if nxt.phase != before:
            transitions = list(ctx.status.get("transitions") or [])
            transitions.append({"phase": nxt.phase, "at": ts(ctx.now), "reason": nxt.reason})
            ctx.patch["transitions"] = transitions[-64:]
            metrics.replay_transitions.labels(ctx.namespace, ctx.name, nxt.phase).inc()
        if seen.preflight is not None:
            ctx.patch["preflight"] = [_check(c) for c in seen.preflight]
        if seen.validation is not None:
            ctx.patch["validation"] = [_check(c) for c in seen.validation]
        if nxt.phase == "CuttingOver" and before != "CuttingOver":
            ctx.patch["cutover"] = {
                "view": ctx.view_name,
                "fromVersion": nxt.cutover_from,
                "toVersion": nxt.cutover_to,
                "requestedAt": ts(ctx.now),
            }
        if nxt.phase == "Observing" and before == "CuttingOver":
            ctx.patch["cutover"] = {**(ctx.status.get("cutover") or {}), "at": ts(nxt.cut_over_at)}
            metrics.cutovers.labels(ctx.namespace, ctx.view_name or "").inc()
        if nxt.phase == "RolledBack" and before != "RolledBack":
            metrics.rollbacks.labels(ctx.namespace, ctx.job_name).inc()
        cleanups = replay.RemoveReplay | replay.DecommissionPrevious | replay.StopReplay
        if any(isinstance(a, cleanups) for a in decision.actions):
            ctx.patch["cleanup"] = "Pending"

    async def _write(
        self,
        obj: dict[str, Any],
        patch: dict[str, Any],
        conditions: list[ConditionUpdate],
        events: list[Event],
        now: datetime,
    ) -> None:
        generation = int(obj["metadata"]["generation"])
        await write_status(self.kube, "ReplayRun", obj, patch, conditions, events, generation, now)

    # -- observations ---------------------------------------------------------------------------------

    async def _holder(self, ctx: Context) -> str | None:
        """Another run that holds the same view: one past Pending, or a Pending one created earlier."""
        if not ctx.view_name:
            return None
        mine = (ctx.obj["metadata"]["creationTimestamp"], ctx.name)
        for other in await self.kube.select(API_VERSION, "ReplayRun", ctx.namespace, ""):
            meta, status = other["metadata"], other.get("status") or {}
            if meta["name"] == ctx.name or status.get("view") != ctx.view_name:
                continue
            phase = status.get("phase") or "Pending"
            if phase in ACTIVE - {"Pending"}:
                return str(meta["name"])
            if phase == "Pending" and (meta["creationTimestamp"], meta["name"]) < mine:
                return str(meta["name"])
        return None

    async def _preflight(self, ctx: Context, admin: KafkaAdmin) -> tuple[Check, ...] | None:
        """Nothing is created before every check passes. None: could not check now (retried until the
        deadline). Start and target offsets are recorded with the result, as the intent of the replay."""
        run, job = ctx.run, ctx.job
        checks: list[Check] = []
        active = (ctx.job_obj.get("status") or {}).get("activeVersion")
        if run.version == active:
            checks.append(
                Check(
                    "Version", "Error", "VersionIsActive", f"spec.version {run.version} is the active version"
                )
            )
        if run.until.live:
            if not ctx.view_name:
                checks.append(
                    Check(
                        "View",
                        "Error",
                        "NoView",
                        f"StreamJob {ctx.job_name} has no spec.output.view to cut over; use a bounded "
                        "spec.until for a backfill",
                    )
                )
            elif ctx.view_spec is None:
                checks.append(
                    Check(
                        "View",
                        "Error",
                        "ViewNotFound",
                        f"MaterializedView {ctx.view_name} not found or invalid",
                    )
                )
            elif ctx.view_spec.active_version and ctx.view_spec.active_version != run.version:
                checks.append(
                    Check(
                        "View",
                        "Error",
                        "ViewPinned",
                        f"MaterializedView {ctx.view_name} pins spec.activeVersion "
                        f"{ctx.view_spec.active_version}; remove the pin to cut over",
                    )
                )
        try:
            start = await admin.resolve_start(
                job.source.topics,
                earliest=bool(run.from_.earliest),
                timestamp_ms=int(run.from_.timestamp.timestamp() * 1000) if run.from_.timestamp else None,
                offsets={(o.topic, o.partition): o.offset for o in run.from_.offsets}
                if run.from_.offsets
                else None,
            )
            facts = await admin.partition_facts(start)
            topics = await admin.describe_topics(job.source.topics)
            target = await self._target_offsets(ctx, admin, list(start.offsets))
        except KafkaAdapterError as exc:
            checks.append(Check("Start", "Error", "InvalidStart", f"spec.from: {exc}"))
            return tuple(checks)
        except Exception as exc:  # the cluster is unreachable: check again until the deadline
            log.warning("ReplayRun %s/%s: preflight could not run: %s", ctx.namespace, ctx.name, exc)
            return None
        out_topic = output_topic(job, run)
        topic_exists = bool(out_topic) and await admin.topic_exists(out_topic or "")
        rate = (
            float(run.throttle.records_per_second)
            if run.throttle and run.throttle.records_per_second
            else None
        )
        checks += preflight(
            topics, facts, ReplayPlan(rate, out_topic, topic_exists), int(ctx.now.timestamp() * 1000)
        ).checks
        table = output_table(job, run)
        if table and ctx.view_spec and ctx.view_spec.backend.type == "postgres":
            try:
                view = await open_view(self.kube, ctx.namespace, ctx.view_spec, admin)
                if await view.exists(table):
                    checks.append(
                        Check("OutputFree", "Error", "OutputExists", f"table {table} already exists")
                    )
            except (ViewUnavailable, AliasError) as exc:
                checks.append(Check("View", "Error", "ViewUnavailable", str(exc)))
        if start.past_end:
            checks.append(Check("Start", "Warning", "PastEnd", start.message))
        ctx.patch["startOffsets"] = _entries(start.offsets)
        ctx.patch["targetOffsets"] = _entries(target)
        if run.throttle:
            ctx.patch["throttle"] = await self._quota_plan(ctx, admin)
        return tuple(checks)

    async def _target_offsets(
        self, ctx: Context, admin: KafkaAdmin, parts: list[Partition]
    ) -> dict[Partition, int]:
        until = ctx.run.until
        if until.offsets:
            return {(o.topic, o.partition): o.offset for o in until.offsets}
        ends = await admin.end_offsets(parts)
        if until.timestamp:
            at = await admin.offsets_for_time(parts, int(until.timestamp.timestamp() * 1000))
            return {p: (ends[p] if o < 0 else o) for p, o in at.items()}
        return ends  # live: the head when the replay begins

    async def _quota_plan(self, ctx: Context, admin: KafkaAdmin) -> dict[str, Any]:
        throttle = ctx.run.throttle
        assert throttle is not None
        if throttle.bytes_per_second:
            rate, basis = (
                throttle.bytes_per_second,
                f"spec.throttle.bytesPerSecond {throttle.bytes_per_second}",
            )
            if throttle.burst:
                rate, basis = throttle.burst, f"{basis}, burst {throttle.burst}"
        else:
            assert throttle.records_per_second is not None
            mean = await average_record_bytes(ctx.bootstrap, list(ctx.job.source.topics))
            rate = bytes_quota(throttle.records_per_second, mean or 1024.0, throttle.burst)
            basis = (
                f"{throttle.records_per_second} records/s x {mean or 1024.0:.0f} bytes mean record size "
                f"({'measured' if mean else 'assumed'})"
            )
        return {"clientId": ctx.group, "bytesPerSecond": rate, "basis": basis, "subtasks": ctx.parallelism}

    async def _progress(self, ctx: Context, admin: KafkaAdmin) -> dict[str, Any]:
        start = _offsets(ctx.status.get("startOffsets"))
        target = _offsets(ctx.status.get("targetOffsets"))
        committed = await admin.committed(ctx.group)
        position = {p: max(committed.get(p, o), o) for p, o in start.items()}
        consumed = sum(position[p] - start[p] for p in start)
        total = sum(max(target.get(p, o) - o, 0) for p, o in start.items())
        reached = all(position[p] >= target.get(p, o) for p, o in start.items()) and bool(start)
        # The achieved rate since the replay began: reads under a broker quota come in lumps, so a rate
        # between two reconciles would swing between zero and a burst.
        began = next(
            (dt(t["at"]) for t in ctx.status.get("transitions") or [] if t.get("phase") == "Replaying"), None
        )
        elapsed = (ctx.now - began).total_seconds() if began else 0.0
        rate = consumed / elapsed if elapsed >= 1 else None
        remaining = max(total - consumed, 0)
        eta = remaining / rate if rate else None
        ctx.patch["progress"] = {
            "consumed": consumed,
            "target": total,
            "percent": f"{min(100, int(100 * consumed / total)) if total else 100}%",
            "recordsPerSecond": round(rate, 1) if rate is not None else None,
            "eta": _eta(eta) if remaining else "0s",
        }
        lag = {p: max(target.get(p, 0) - position[p], 0) for p in start}
        found = self.lag.latest(ctx.group)
        if found is not None:  # once caught up to the old head, lag is against the live head
            lag = {p: found.lag_of(*p) for p in start}
        ctx.patch["lag"] = {
            "total": sum(lag.values()),
            "evaluation": found.status.status.name if found else None,
            "partitions": [{"topic": t, "partition": n, "lag": v} for (t, n), v in sorted(lag.items())],
        }
        log_starts = await admin.log_start_offsets(list(start))
        fell = fell_off_retention({p: committed.get(p) for p in start}, log_starts)
        return {
            "reached_target": reached,
            "fell_off": tuple(f"{t}[{n}] at {c} < log start {s}" for (t, n), c, s in fell),
        }

    async def _validate(self, ctx: Context) -> tuple[Check, ...] | None:
        gates = ctx.run.validation
        if ctx.view_spec is None:
            return (Check("View", "Error", "ViewNotFound", f"MaterializedView {ctx.view_name} not found"),)
        try:
            view = await open_view(self.kube, ctx.namespace, ctx.view_spec, self._admin(ctx))
            active_version = (ctx.view_obj or {}).get("status", {}).get("activeVersion")
            active = ctx.physical(active_version)
            new = ctx.physical(ctx.run.version)
            assert new is not None
            active_count = await view.count(active) if active else None
            new_count = await view.count(new)
            diff: validation.KeyDiff | str | None = None
            if gates.sample_key_diff and active and active_count:
                try:
                    sampled, differing, examples = await view.key_diff(
                        active,
                        new,
                        sample=gates.sample_key_diff.sample_size,
                        ignore=list(gates.sample_key_diff.ignore_columns),
                    )
                    diff = validation.KeyDiff(sampled, differing, tuple(examples))
                except (Unsupported, AliasError) as exc:
                    diff = str(exc)
            sql: list[tuple[str, bool, str]] = []
            for check in gates.sql:
                try:
                    ok, message = await view.check(new, check.query)
                except Unsupported as exc:
                    ok, message = False, str(exc)
                sql.append((check.name, ok, message))
        except (ViewUnavailable, AliasError) as exc:
            return (Check("View", "Error", "ViewUnavailable", str(exc)),)
        except Exception as exc:  # unreachable for now: measured again until the deadline
            log.warning("ReplayRun %s/%s: validation could not run: %s", ctx.namespace, ctx.name, exc)
            return None
        measured = validation.Measured(active, new, active_count, new_count, diff, tuple(sql))
        limits = validation.Gates(
            gates.count_ratio.min,
            gates.count_ratio.max,
            gates.sample_key_diff.max_mismatch_ratio if gates.sample_key_diff else None,
            gates.no_data,
        )
        return validation.evaluate(measured, limits)

    async def _alias(self, ctx: Context, state: replay.ReplayState) -> dict[str, Any]:
        assert ctx.view_spec is not None
        believed = ((ctx.view_obj or {}).get("status") or {}).get("activeVersion")
        try:
            view = await open_view(self.kube, ctx.namespace, ctx.view_spec, self._admin(ctx))
            target = await view.target()
        except (ViewUnavailable, AliasError):
            return {"expected_target": believed}
        candidates = [ctx.run.version, state.cutover_from, state.cutover_to, believed]
        return {"alias_target": ctx.version_of(target, candidates), "expected_target": believed}

    def _admin(self, ctx: Context) -> KafkaAdmin:
        return self.lag.monitor(ctx.bootstrap).admin

    def _track(self, ctx: Context, phase: str) -> None:
        if phase in ("Replaying", "CatchingUp", "Validating", "AwaitingApproval"):
            labels = {"namespace": ctx.namespace, "job": ctx.job_name, "version": ctx.run.version}
            self.lag.track(ctx.bootstrap, ctx.group, list(ctx.job.source.topics), labels)

    def _export(self, ctx: Context, phase: str) -> None:
        for p in replay.PHASES:
            metrics.replay_phase.labels(ctx.namespace, ctx.name, p).set(1 if p == phase else 0)
        progress = ctx.patch.get("progress") or {}
        if progress.get("target"):
            metrics.replay_progress.labels(ctx.namespace, ctx.name).set(
                progress["consumed"] / progress["target"]
            )
        if progress.get("recordsPerSecond") is not None:
            metrics.replay_rate.labels(ctx.namespace, ctx.name).set(progress["recordsPerSecond"])

    # -- actions --------------------------------------------------------------------------------------

    async def _act(self, ctx: Context, actions: list[replay.ReplayAction], admin: KafkaAdmin) -> None:
        for action in actions:
            try:
                if isinstance(action, replay.CreateReplay):
                    await self._create(ctx, admin)
                elif isinstance(action, replay.CutOver):
                    await self._cutover(ctx, action)
                elif isinstance(action, replay.PromoteVersion):
                    await self._unthrottle(ctx)  # live now: the StreamJob adopts it (it watches this run)
                elif isinstance(action, replay.RemoveReplay):
                    await self._cleanup(ctx.obj, ctx.run, ctx.job, admin)
                elif isinstance(action, replay.DecommissionPrevious):
                    await self._decommission(ctx.obj, ctx.run, admin)
                elif isinstance(action, replay.StopReplay):
                    await self._stop_replay(ctx.obj, ctx.run, admin)
            except AliasMoved as exc:
                await self._write(
                    ctx.obj,
                    {},
                    stalled("AliasMoved", str(exc)),
                    once(ctx.status, "AliasMoved", str(exc)),
                    ctx.now,
                )
                return
            except (AliasError, KafkaAdapterError, ViewUnavailable, ApiException, NotServed) as exc:
                message = f"{type(action).__name__} failed, retried on the next reconcile: {exc}"
                await self._write(ctx.obj, {}, [], once(ctx.status, "ActionFailed", message), ctx.now)
                return

    async def _create(self, ctx: Context, admin: KafkaAdmin) -> None:
        """Each part checks the world first, so a repeat after a crash changes nothing."""
        start = _offsets(ctx.status.get("startOffsets"))
        if not await admin.committed(ctx.group):
            await admin.seed_group(ctx.group, start)
        topic = output_topic(ctx.job, ctx.run)
        if topic and ctx.job.output.topic:
            out = ctx.job.output.topic
            config = {**out.config, "retention.ms": replay_retention(ctx.run)}
            api = await self.kube.preferred("KafkaTopic", ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"])
            if ctx.job.source.kafka.cluster_ref and api:
                await self.kube.apply(
                    kafka_topic(
                        namespace=ctx.job.source.kafka.namespace or ctx.namespace,
                        job=ctx.job_name,
                        owner_uid=ctx.job_obj["metadata"]["uid"],
                        topic=topic,
                        version=ctx.run.version,
                        partitions=out.partitions,
                        replicas=out.replicas,
                        config=config,
                        cluster=ctx.job.source.kafka.cluster_ref,
                        api_version=api,
                    )
                )
            else:
                await admin.ensure_topic(
                    topic, partitions=out.partitions, replication_factor=out.replicas, config=config
                )
        table = output_table(ctx.job, ctx.run)
        if table and ctx.view_spec and ctx.view_spec.backend.type == "postgres":
            view = await open_view(self.kube, ctx.namespace, ctx.view_spec, admin)
            active = ((ctx.view_obj or {}).get("status") or {}).get("activeVersion")
            await view.prepare(table, like=ctx.physical(active))
        throttle = ctx.status.get("throttle")
        if throttle:
            subtasks = int(throttle.get("subtasks", 1))
            await set_quota(ctx.bootstrap, throttle["clientId"], int(throttle["bytesPerSecond"]), subtasks)
        await self.kube.apply(
            replay_deployment(
                namespace=ctx.namespace,
                job_name=ctx.job_name,
                job_uid=ctx.job_obj["metadata"]["uid"],
                job=ctx.job,
                run_name=ctx.name,
                run=ctx.run,
                bootstrap_servers=ctx.bootstrap,
            )
        )

    async def _cutover(self, ctx: Context, action: replay.CutOver) -> None:
        assert ctx.view_spec is not None
        view = await open_view(self.kube, ctx.namespace, ctx.view_spec, self._admin(ctx))
        to = ctx.physical(action.to)
        assert to is not None
        done = await view.cutover(to, expected=ctx.physical(action.expected))
        cut = {**(ctx.status.get("cutover") or {})}
        if not done.already_done:
            cut["durationMs"] = done.duration_ms
        await self._write(ctx.obj, {"cutover": cut}, [], [], ctx.now)

    async def _unthrottle(self, ctx: Context) -> None:
        if ctx.status.get("throttle"):
            throttle = ctx.status["throttle"]
            await remove_quota(ctx.bootstrap, throttle["clientId"], int(throttle.get("subtasks", 1)))

    async def _cleanup(
        self, obj: dict[str, Any], run: ReplayRunSpec, job: StreamJobSpec | None, admin: KafkaAdmin | None
    ) -> bool:
        """Remove the replay's deployment, group, quota and output: only ever before a cutover, and never
        an output the view reads. True once everything is gone."""
        meta = obj["metadata"]
        namespace, job_name = meta["namespace"], run.job_ref.name
        fd_name = names.deployment_name(job_name, run.version)
        fd = await self.kube.get(FD_API, "FlinkDeployment", namespace, fd_name)
        if fd is not None and (fd["metadata"].get("labels") or {}).get("kappa.dev/role") == "replay":
            await self.kube.delete(FD_API, "FlinkDeployment", namespace, fd_name)
            return False  # the group has members until the job is gone
        if job is None or admin is None:
            return True
        group = names.consumer_group(namespace, job_name, run.version)
        self.lag.untrack(group)
        info = (await admin.describe_groups([group]))[group]
        if info.members:
            return False
        await admin.delete_group(group)
        status = obj.get("status") or {}
        if status.get("throttle"):
            throttle = status["throttle"]
            await remove_quota(
                admin.bootstrap_servers, throttle["clientId"], int(throttle.get("subtasks", 1))
            )
        topic = output_topic(job, run)
        if topic:
            api = await self.kube.preferred("KafkaTopic", ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"])
            if job.source.kafka.cluster_ref and api:
                resource = kafka_topic_name(topic)
                await self.kube.delete(api, "KafkaTopic", job.source.kafka.namespace or namespace, resource)
            else:
                await admin.delete_topic(topic)
        table = output_table(job, run)
        view_name = status.get("view")
        if table and view_name:
            view_obj = await self.kube.get(API_VERSION, "MaterializedView", namespace, view_name)
            if view_obj is not None:
                view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
                if view_spec.backend.type == "postgres":
                    view = await open_view(self.kube, namespace, view_spec, admin)
                    await view.remove(table)
        return True

    async def _stop_replay(self, obj: dict[str, Any], run: ReplayRunSpec, admin: KafkaAdmin | None) -> bool:
        namespace, job_name = obj["metadata"]["namespace"], run.job_ref.name
        fd_name = names.deployment_name(job_name, run.version)
        fd = await self.kube.get(FD_API, "FlinkDeployment", namespace, fd_name)
        if fd is not None and (fd["metadata"].get("labels") or {}).get("kappa.dev/role") == "replay":
            await self.kube.delete(FD_API, "FlinkDeployment", namespace, fd_name)
        self.lag.untrack(names.consumer_group(namespace, job_name, run.version))
        if admin is not None and (obj.get("status") or {}).get("throttle"):
            throttle = (obj.get("status") or {})["throttle"]
            await remove_quota(
                admin.bootstrap_servers, throttle["clientId"], int(throttle.get("subtasks", 1))
            )
        return True

    async def _decommission(self, obj: dict[str, Any], run: ReplayRunSpec, admin: KafkaAdmin | None) -> bool:
        """After the window: the previous version's deployment and group go; its output stays, under its
        own retention (the StreamJob's deletionPolicy)."""
        meta, status = obj["metadata"], obj.get("status") or {}
        previous = (status.get("cutover") or {}).get("fromVersion")
        if not previous:
            return True
        namespace, job_name = meta["namespace"], run.job_ref.name
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, job_name)
        if job_obj and (job_obj.get("status") or {}).get("activeVersion") == previous:
            return True  # it is live again (rolled back by other means): nothing to decommission
        fd_name = names.deployment_name(job_name, previous)
        if await self.kube.delete(FD_API, "FlinkDeployment", namespace, fd_name):
            return False
        if admin is None:
            return True
        group = names.consumer_group(namespace, job_name, previous)
        self.lag.untrack(group)
        info = (await admin.describe_groups([group]))[group]
        if info.members:
            return False
        await admin.delete_group(group)
        return True

    async def _finish(
        self,
        obj: dict[str, Any],
        run: ReplayRunSpec,
        job_obj: dict[str, Any] | None,
        state: replay.ReplayState,
        now: datetime,
    ) -> None:
        """End states: finish a cleanup or decommission that a crash or a busy group interrupted."""
        status = obj.get("status") or {}
        if status.get("cleanup") != "Pending":
            return
        job = None
        admin = None
        if job_obj is not None:
            with contextlib.suppress(ValidationError):
                job = StreamJobSpec.model_validate(job_obj["spec"])
        if job is not None:
            bootstrap = await bootstrap_servers(self.kube, job, obj["metadata"]["namespace"])
            admin = self.lag.monitor(bootstrap).admin if bootstrap else None
        try:
            if state.phase == "Succeeded" and state.reason == "BackfillComplete":
                done = await self._stop_replay(obj, run, admin)
            elif state.phase == "Succeeded":
                done = await self._decommission(obj, run, admin)
            elif state.phase == "Failed" and state.reason in replay.KEPT_FOR_INSPECTION:
                done = await self._stop_replay(obj, run, admin)
            elif state.phase in ("Aborted", "Failed"):
                done = await self._cleanup(obj, run, job, admin)
            else:
                done = True
        except (AliasError, KafkaAdapterError, ViewUnavailable, ApiException) as exc:
            await self._write(
                obj, {}, [], once(status, "CleanupFailed", f"cleanup failed, retrying: {exc}"), now
            )
            return
        if done:
            if state.reason == "BackfillComplete":
                message = "the backfill's deployment is removed; its output and consumer group stay"
            elif state.reason in replay.KEPT_FOR_INSPECTION:
                message = "the replay job is stopped; its output and group stay for inspection until an abort"
            elif state.phase == "Succeeded":
                message = "the previous version's deployment and consumer group are decommissioned"
            else:
                message = "the replay's deployment, consumer group and output are removed"
            await self._write(obj, {"cleanup": "Done"}, [], [Event("Normal", "CleanedUp", message)], now)

    async def finalize(self, namespace: str, name: str) -> bool:
        """Deleting a run before its cutover removes what it created; after it, the replayed version is the
        live one and stays."""
        obj = await self.kube.get(API_VERSION, "ReplayRun", namespace, name)
        if obj is None:
            return True
        status = obj.get("status") or {}
        phase = status.get("phase") or "Pending"
        created = any(t.get("phase") == "Replaying" for t in status.get("transitions") or [])
        if not created or phase in ("CuttingOver", "Observing", "Succeeded", "RolledBack"):
            return True  # nothing created (never remove what a failed preflight found), or it is live now
        kept = phase == "Failed" and status.get("reason") in replay.KEPT_FOR_INSPECTION
        if phase in ("Aborted", "Failed") and status.get("cleanup") == "Done" and not kept:
            return True
        try:
            run = ReplayRunSpec.model_validate(obj["spec"])
        except ValidationError:
            return True
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, run.job_ref.name)
        job = None
        if job_obj is not None:
            with contextlib.suppress(ValidationError):
                job = StreamJobSpec.model_validate(job_obj["spec"])
        admin = None
        if job is not None:
            bootstrap = await bootstrap_servers(self.kube, job, namespace)
            admin = self.lag.monitor(bootstrap).admin if bootstrap else None
        return await self._cleanup(obj, run, job, admin)


def _parallelism(job: StreamJobSpec, run: ReplayRunSpec) -> int:
    if run.overrides and run.overrides.parallelism:
        return run.overrides.parallelism
    return job.flink.parallelism


def _quota_entities(client_id: str, parallelism: int) -> list[str]:
    """Flink's KafkaSource names each reader `{client.id.prefix}-{subtask}`, and quotas match client ids
    exactly: the quota goes on the id itself (single-consumer jobs) and on each subtask's id, split evenly."""
    return [client_id, *(f"{client_id}-{i}" for i in range(parallelism))]


async def set_quota(bootstrap: str, client_id: str, total: int, parallelism: int) -> None:
    quotas = ClientQuotas(bootstrap)
    try:
        for entity in _quota_entities(client_id, parallelism):
            share = total if entity == client_id else max(total // parallelism, 1024)
            await quotas.set_consumer_byte_rate(entity, share)
    finally:
        quotas.close()


async def remove_quota(bootstrap: str, client_id: str, parallelism: int) -> None:
    quotas = ClientQuotas(bootstrap)
    try:
        for entity in _quota_entities(client_id, parallelism):
            await quotas.remove(entity)
    finally:
        quotas.close()


def _check(c: Check) -> dict[str, Any]:
    return {"name": c.name, "passed": c.passed, "reason": c.reason, "message": c.message[:2048]}


def _reconciler(memo: kopf.Memo) -> ReplayRunReconciler:
    if not hasattr(memo, "replayruns"):
        memo.replayruns = ReplayRunReconciler(Kube(), memo.lag)
        memo.replayrun_locks = {}
    return memo.replayruns  # type: ignore[no-any-return]


async def _locked(memo: kopf.Memo, namespace: str, name: str) -> None:
    reconciler = _reconciler(memo)
    async with memo.replayrun_locks.setdefault((namespace, name), asyncio.Lock()):
        await reconciler.reconcile(namespace, name)


@kopf.on.resume(GROUP, VERSION, "replayruns")
@kopf.on.create(GROUP, VERSION, "replayruns")
@kopf.on.update(GROUP, VERSION, "replayruns", field="spec")
@kopf.on.update(GROUP, VERSION, "replayruns", field="metadata.annotations")
async def reconcile_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.timer(GROUP, VERSION, "replayruns", interval=INTERVAL, initial_delay=INTERVAL)
async def poll_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    await _locked(memo, str(meta["namespace"]), str(meta["name"]))


@kopf.on.delete(GROUP, VERSION, "replayruns")
async def finalize_replayrun(meta: kopf.Meta, memo: kopf.Memo, **_: Any) -> None:
    namespace, name = str(meta["namespace"]), str(meta["name"])
    reconciler = _reconciler(memo)
    async with memo.replayrun_locks.setdefault((namespace, name), asyncio.Lock()):
        done = await reconciler.finalize(namespace, name)
    if not done:
        raise kopf.TemporaryError("removing what the run created", delay=2)
