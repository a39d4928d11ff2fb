"""What a ReplayRun's reconcile looks at in the world: the run holding its view, the preflight checks, the
replay's progress and lag, the validation gates, and where the view points."""

from __future__ import annotations

import logging
from typing import Any

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, BackendUnavailable
from kappa.adapters.kafka import KafkaAdapterError, KafkaAdmin, Partition
from kappa.adapters.quota import average_record_bytes, bytes_quota
from kappa.adapters.serving import Unsupported
from kappa.api.base import API_VERSION
from kappa.controllers.cluster import ViewUnavailable, open_view
from kappa.controllers.replay_context import Context, ReplayBase, entries_of, offsets_of
from kappa.controllers.status import dt
from kappa.machines import replay, validation
from kappa.machines.preflight import (
    Check,
    ReplayPlan,
    check_start_not_in_future,
    fell_off_retention,
    preflight,
)
from kappa.render.replay import output_table, output_topic

log = logging.getLogger(__name__)
ACTIVE = frozenset(replay.BEFORE_CUTOVER | {"CuttingOver", "Observing"})
_PREFLIGHT_DOWN: set[tuple[str, str]] = set()
"""Runs whose preflight could not reach Kafka at the last look: said when it starts and when it ends, not at
every retry."""


def _eta(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class ReplayObservations(ReplayBase):
    # -- observations ---------------------------------------------------------------------------------

    async def _holder(self, ctx: Context) -> str | None:
        """Another run that holds the same view, or None once this run holds it. Holding is an atomic claim
        (adapters/claims.py): status alone cannot tell, since runs created together have written none yet."""
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

        async def ended(name: str, uid: str) -> bool:
            """A claim's holder holds nothing any more: deleted, recreated under its name, or ended."""
            return await self._claim_ended(ctx.namespace, name, uid)

        return await self.claims.claim(ctx.namespace, ctx.view_name, ctx.obj, ended)

    async def _claim_ended(self, namespace: str, name: str, uid: str) -> bool:
        holder = await self.kube.get(API_VERSION, "ReplayRun", namespace, name)
        if holder is None or holder["metadata"]["uid"] != uid:
            return True
        return (holder.get("status") or {}).get("phase") in replay.FINAL

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
        now_ms = int(ctx.now.timestamp() * 1000)
        if run.from_.timestamp:
            checks.append(check_start_not_in_future(int(run.from_.timestamp.timestamp() * 1000), now_ms))
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
            if (ctx.namespace, ctx.name) not in _PREFLIGHT_DOWN:
                _PREFLIGHT_DOWN.add((ctx.namespace, ctx.name))
                log.warning(
                    "ReplayRun %s/%s: preflight could not run, retrying: %s", ctx.namespace, ctx.name, exc
                )
            return None
        if (ctx.namespace, ctx.name) in _PREFLIGHT_DOWN:
            _PREFLIGHT_DOWN.discard((ctx.namespace, ctx.name))
            log.info("ReplayRun %s/%s: preflight reaches Kafka again", ctx.namespace, ctx.name)
        out_topic = output_topic(job, run)
        topic_exists = bool(out_topic) and await admin.topic_exists(out_topic or "")
        rate = (
            float(run.throttle.records_per_second)
            if run.throttle and run.throttle.records_per_second
            else None
        )
        plan = ReplayPlan(
            rate,
            out_topic,
            topic_exists,
            end=None if run.until.live else target,
            end_field="spec.until.offsets" if run.until.offsets else "spec.until.timestamp",
        )
        checks += preflight(topics, facts, plan, now_ms).checks
        metrics.set_retention_deadline(ctx.namespace, ctx.name, topics, facts)
        table = output_table(job, run)
        if table and ctx.view_spec and ctx.view_spec.backend.type == "postgres":
            try:
                view = await open_view(self.kube, ctx.namespace, ctx.view_spec, admin)
                if await view.exists(table):
                    checks.append(
                        Check("OutputFree", "Error", "OutputExists", f"table {table} already exists")
                    )
            except BackendUnavailable:
                raise  # an outage: the reconcile says so and checks again, nothing failed
            except (ViewUnavailable, AliasError) as exc:
                checks.append(Check("View", "Error", "ViewUnavailable", str(exc)))
        if start.past_end:
            checks.append(Check("Start", "Warning", "PastEnd", start.message))
        ctx.patch["startOffsets"] = entries_of(start.offsets)
        ctx.patch["targetOffsets"] = entries_of(target)
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
            mean = await average_record_bytes(ctx.connection, list(ctx.job.source.topics))
            rate = bytes_quota(throttle.records_per_second, mean or 1024.0, throttle.burst)
            basis = (
                f"{throttle.records_per_second} records/s x {mean or 1024.0:.0f} bytes mean record size "
                f"({'measured' if mean else 'assumed'})"
            )
        return {"clientId": ctx.group, "bytesPerSecond": rate, "basis": basis, "subtasks": ctx.parallelism}

    async def _progress(self, ctx: Context, admin: KafkaAdmin) -> dict[str, Any]:
        start = offsets_of(ctx.status.get("startOffsets"))
        target = offsets_of(ctx.status.get("targetOffsets"))
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
                except BackendUnavailable:
                    raise
                except (Unsupported, AliasError) as exc:
                    diff = str(exc)
            sql: list[tuple[str, bool, str]] = []
            for check in gates.sql:
                try:
                    ok, message = await view.check(new, check.query)
                except Unsupported as exc:
                    ok, message = False, str(exc)
                sql.append((check.name, ok, message))
        except BackendUnavailable:
            raise  # an outage is no failed gate: the reconcile says so and validates again
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
        except BackendUnavailable:
            # Unread is not "points elsewhere": outside Observing (where the target only tells whether an
            # abort may still undo a cutover) the reconcile reports the outage and waits for an answer.
            if state.phase != "Observing":
                raise
            return {"expected_target": believed}
        except (ViewUnavailable, AliasError):
            return {"expected_target": believed}
        candidates = [ctx.run.version, state.cutover_from, state.cutover_to, believed]
        return {"alias_target": ctx.version_of(target, candidates), "expected_target": believed}
