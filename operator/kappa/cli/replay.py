"""`kubectl kappa replay JOB --version V --from earliest|<RFC3339>|TOPIC:PARTITION=OFFSET,...`: create a
ReplayRun; `--dry-run` prints it; `--plan` asks Kafka what the operator's preflight would find, and creates
nothing. The plan runs the operator's own pure checks (kappa.machines.preflight) on facts gathered with the
operator's Kafka adapter, the way controllers/replayrun/preflight.py does."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kappa.adapters.cli_cluster import CliError, Cluster
from kappa.api.base import API_VERSION
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus
from kappa.cli import codes
from kappa.cli.status_rows import human
from kappa.machines.preflight import (
    Check,
    Partition,
    PartitionFacts,
    ReplayPlan,
    TopicFacts,
    check_start_not_in_future,
    preflight,
)
from kappa.render.replay import output_table, output_topic


def parse_time(text: str) -> datetime | None:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        raise CliError(f"{text}: an RFC 3339 time needs a zone, e.g. {text}Z")
    return at


def parse_offsets(text: str, flag: str) -> list[dict[str, Any]]:
    out = []
    for item in text.replace(" ", ",").split(","):
        if not item:
            continue
        try:
            where, offset = item.rsplit("=", 1)
            topic, partition = where.rsplit(":", 1)
            out.append({"topic": topic, "partition": int(partition), "offset": int(offset)})
        except ValueError:
            raise CliError(
                f"{flag} {text}: expected earliest, an RFC 3339 time (2026-11-28T12:00:00Z) or offsets "
                "TOPIC:PARTITION=OFFSET,... (e.g. clicks:0=120,clicks:1=80)"
            ) from None
    return out


def parse_position(text: str, flag: str, open_end: str) -> dict[str, Any]:
    if text == open_end:
        return {open_end: True}
    at = parse_time(text)
    if at is not None:
        return {"timestamp": at.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    return {"offsets": parse_offsets(text, flag)}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def build(
    job: str,
    version: str,
    start: str,
    *,
    until: str = "live",
    name: str | None = None,
    approval: str | None = None,
    throttle: int | None = None,
    rollback_window: str | None = None,
    spec_file: str | None = None,
) -> dict[str, Any]:
    """The ReplayRun, checked against the API model (the CRD's own schema comes from it)."""
    spec: dict[str, Any] = {
        "jobRef": {"name": job},
        "version": version,
        "from": parse_position(start, "--from", "earliest"),
        "until": parse_position(until, "--until", "live"),
    }
    if approval:
        spec["approval"] = approval
    if throttle:
        spec["throttle"] = {"recordsPerSecond": throttle}
    if rollback_window:
        spec["rollbackWindow"] = rollback_window
    if spec_file:
        extra = yaml.safe_load(Path(spec_file).read_text()) or {}
        if not isinstance(extra, dict):
            raise CliError(f"--spec-file {spec_file}: a mapping of ReplayRun spec fields")
        spec = _merge(spec, extra.get("spec", extra))
    try:
        ReplayRunSpec.model_validate(spec)
    except ValidationError as exc:
        raise CliError(f"invalid ReplayRun spec: {exc}") from None
    return {
        "apiVersion": API_VERSION,
        "kind": "ReplayRun",
        "metadata": {"name": name or f"{job}-{version}"},
        "spec": spec,
    }


@dataclass
class Plan:
    bootstrap: str
    topics: dict[str, TopicFacts]
    facts: dict[Partition, PartitionFacts]
    target: dict[Partition, int]
    rate: float | None
    output: str | None
    """The output topic."""
    table: str | None
    checks: list[Check]
    now: datetime

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def records(self, part: Partition) -> int:
        f = self.facts[part]
        return max(0, self.target.get(part, f.end) - max(f.start, f.log_start))


async def _gather(cluster: Cluster, run: dict[str, Any], bootstrap: str | None, timeout: float) -> Plan:
    from kappa.adapters.kafka.admin import KafkaAdmin
    from kappa.adapters.kafka.connection import KafkaConnection
    from kappa.adapters.kafka.values import KafkaAdapterError
    from kappa.controllers.cluster import KafkaConnectionError, kafka_connection

    spec = ReplayRunSpec.model_validate(run["spec"])
    job_obj = cluster.must_get("StreamJob", spec.job_ref.name)
    job = StreamJobSpec.model_validate(job_obj["spec"])
    # As the operator connects (controllers/cluster.py): the bootstrap servers of the spec or of the Strimzi
    # listener, and the credentials from the Secrets the spec names, read with the user's own rights.
    try:
        connection = await kafka_connection(cluster.kube(), job, cluster.namespace)
    except KafkaConnectionError as exc:
        raise CliError(f"{exc.reason}: {exc.message}; nothing was created") from None
    if bootstrap:  # --bootstrap-servers: another address of the same cluster, with the same credentials
        connection = replace(connection or KafkaConnection(bootstrap), bootstrap=bootstrap)
    if connection is None or not connection.bootstrap:
        raise CliError("no Kafka bootstrap servers known for the StreamJob; give --bootstrap-servers")
    servers = connection.bootstrap
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    checks: list[Check] = []
    active = StreamJobStatus.of(job_obj).active_version
    if spec.version == active:
        checks.append(Check("Version", "Error", "VersionIsActive", f"spec.version {spec.version} is active"))
    if spec.from_.timestamp:
        checks.append(check_start_not_in_future(int(spec.from_.timestamp.timestamp() * 1000), now_ms))
    admin = KafkaAdmin(connection, client_id="kubectl-kappa", timeout=timeout)
    try:
        start = await admin.resolve_start(
            job.source.topics,
            earliest=bool(spec.from_.earliest),
            timestamp_ms=int(spec.from_.timestamp.timestamp() * 1000) if spec.from_.timestamp else None,
            offsets={(o.topic, o.partition): o.offset for o in spec.from_.offsets}
            if spec.from_.offsets
            else None,
        )
        facts = await admin.partition_facts(start)
        topics = await admin.describe_topics(job.source.topics)
        parts = list(start.offsets)
        if spec.until.offsets:
            target = {(o.topic, o.partition): o.offset for o in spec.until.offsets}
        elif spec.until.timestamp:
            ends = await admin.end_offsets(parts)
            at = await admin.offsets_for_time(parts, int(spec.until.timestamp.timestamp() * 1000))
            target = {p: (ends[p] if o < 0 else o) for p, o in at.items()}
        else:
            target = {p: f.end for p, f in facts.items()}
        out = output_topic(job, spec)
        exists = bool(out) and await admin.topic_exists(out or "")
    except KafkaAdapterError as exc:
        checks.append(Check("Start", "Error", "InvalidStart", f"spec.from: {exc}"))
        return Plan(servers, {}, {}, {}, None, None, None, checks, now)
    finally:
        admin.close()
    rate = (
        float(spec.throttle.records_per_second)
        if spec.throttle and spec.throttle.records_per_second
        else None
    )
    plan = ReplayPlan(
        rate,
        out,
        exists,
        end=None if spec.until.live else target,
        end_field="spec.until.offsets" if spec.until.offsets else "spec.until.timestamp",
    )
    checks += preflight(topics, facts, plan, now_ms).checks
    if start.past_end:
        checks.append(Check("Start", "Warning", "PastEnd", start.message))
    return Plan(servers, topics, facts, target, rate, out, output_table(job, spec), checks, now)


def gather(cluster: Cluster, run: dict[str, Any], bootstrap: str | None, timeout: float = 10.0) -> Plan:
    try:
        return asyncio.run(asyncio.wait_for(_gather(cluster, run, bootstrap, timeout), timeout * 6))
    except TimeoutError:
        raise CliError(f"Kafka did not answer within {timeout * 6:g}s; nothing was created") from None


def _position(spec: dict[str, Any], key: str) -> str:
    pos = spec.get(key) or {}
    if pos.get("offsets"):
        return "offsets " + ", ".join(f"{o['topic']}[{o['partition']}]={o['offset']}" for o in pos["offsets"])
    return str(pos.get("timestamp") or next(iter(pos), "?"))


def print_plan(run: dict[str, Any], plan: Plan) -> None:
    spec = run["spec"]
    print(
        f"Plan for ReplayRun {run['metadata']['name']}: StreamJob {spec['jobRef']['name']} → version "
        f"{spec['version']}, from {_position(spec, 'from')}, until {_position(spec, 'until')}"
    )
    outputs = [f"topic {plan.output}" if plan.output else "", f"table {plan.table}" if plan.table else ""]
    print(f"Kafka {plan.bootstrap}; output {' and '.join(o for o in outputs if o) or '-'}")
    if plan.table:
        print("  (whether the table is free is checked by the operator's preflight; --plan asks Kafka only)")
    for t in plan.topics.values():
        keeps = "forever" if t.retention_ms < 0 else human(t.retention_ms / 1000)
        print(
            f"  topic {t.name}: {t.partitions} partition(s), cleanup.policy {t.cleanup_policy}, keeps {keeps}"
        )
    if plan.facts:
        print(f"  {'partition':<24} {'log start':>10} {'start':>10} {'target':>10} {'to replay':>10}  start")
        for part, f in sorted(plan.facts.items()):
            retained = (
                "retained" if f.start >= f.log_start else f"DELETED ({f.log_start - f.start} records gone)"
            )
            if f.start >= f.log_start and f.start_timestamp_ms is not None:
                retained += f", written {human(plan.now.timestamp() - f.start_timestamp_ms / 1000)} ago"
            name = f"{part[0]}[{part[1]}]"
            target = plan.target.get(part, f.end)
            print(
                f"  {name:<24} {f.log_start:>10} {f.start:>10} {target:>10} {plan.records(part):>10}"
                f"  {retained}"
            )
        total = sum(plan.records(p) for p in plan.facts)
        print(f"Records to replay: {total:,}")
        if plan.rate:
            print(
                f"Estimated duration: {human(total / plan.rate)} at {plan.rate:g} records/s (spec.throttle)"
            )
        else:
            print("Estimated duration: not estimated, no spec.throttle (the replay reads as fast as it can)")
    print("Preflight:")
    for c in plan.checks:
        mark = {"OK": "✓", "Warning": "!", "Error": "✗"}[c.severity]
        print(f"  {mark} {c.name} {c.reason}: {c.message}")


def run_plan(cluster: Cluster, run: dict[str, Any], bootstrap: str | None) -> int:
    plan = gather(cluster, run, bootstrap)
    print_plan(run, plan)
    if plan.passed:
        print("Preflight would pass. Nothing was created (run without --plan to create the ReplayRun).")
        return codes.OK
    reasons = ", ".join(c.reason for c in plan.checks if not c.passed)
    print(f"Preflight would fail ({reasons}). Nothing was created.")
    return codes.FAILED


def create(cluster: Cluster, run: dict[str, Any]) -> int:
    created = cluster.create(run)
    meta = created["metadata"]
    print(f"replayrun.kappa.dev/{meta['name']} created in {meta['namespace']}")
    print(f"follow it: kubectl kappa status rr {meta['name']} -n {meta['namespace']} --watch")
    return codes.OK


def dry_run(run: dict[str, Any]) -> int:
    sys.stdout.write(yaml.safe_dump({**run, "metadata": {**run["metadata"]}}, sort_keys=False))
    return codes.OK
