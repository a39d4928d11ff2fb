"""What `kubectl kappa status` says about a StreamJob, ReplayRun or MaterializedView: labelled rows read from
its status (parsed with the API models in kappa.api), with the style and progress bar the terminal view draws.
kappa.cli.status renders them; kappa.cli.watch follows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kappa.api.base import CommonStatus, Condition
from kappa.api.materializedview import MaterializedViewStatus
from kappa.api.replayrun import CheckResult, ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import GateResult, StreamJobStatus
from kappa.cli import codes

FINAL_CODES = {
    "Succeeded": codes.OK,
    "Failed": codes.FAILED,
    "Aborted": codes.ABORTED,
    "RolledBack": codes.ROLLED_BACK,
}
PHASE_STYLE = {
    "Succeeded": "bold green",
    "Observing": "green",
    "Running": "green",
    "Failed": "bold red",
    "Aborted": "bold red",
    "RolledBack": "bold yellow",
    "RollingBack": "yellow",
    "AwaitingApproval": "bold cyan",
    "Suspended": "cyan",
}


@dataclass(frozen=True)
class Row:
    label: str
    text: str
    style: str = ""
    bar: tuple[int, int] | None = None
    """(completed, total): drawn as a progress bar before the text on a terminal."""


def ago(at: datetime | None, now: datetime) -> str:
    return human((now - at).total_seconds()) if at else "?"


def human(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _checks(label: str, checks: list[CheckResult], *, brief: bool) -> list[Row]:
    """One row per check; `brief`: passed checks by name only, on one line."""
    rows = []
    if brief:
        passed = [c.name for c in checks if c.passed]
        if passed:
            rows.append(Row(label, "✓ " + ", ".join(passed), "green"))
        checks = [c for c in checks if not c.passed]
    for c in checks:
        text = f"{'✓' if c.passed else '✗'} {c.name}: {c.reason}" + (f" ({c.message})" if c.message else "")
        rows.append(Row("" if rows else label, text, "green" if c.passed else "red"))
    return rows


def _gates(gates: list[GateResult]) -> list[str]:
    return [f"{'✓' if g.passed else '✗'} {g.name}" + (f": {g.message}" if g.message else "") for g in gates]


def _conditions(conditions: list[Condition]) -> list[Row]:
    """kstatus' Ready with its message, Stalled when true (Reconciling says what the phase says), and the
    domain conditions on one line."""
    rows = []
    by_type = {c.type: c for c in conditions}
    for kind in ("Ready", "Stalled"):
        c = by_type.get(kind)
        if c is None or (kind == "Stalled" and c.status != "True"):
            continue
        style = "green" if kind == "Ready" and c.status == "True" else "red" if kind == "Stalled" else ""
        text = f"{c.type}={c.status} {c.reason}" + (f": {c.message}" if c.message else "")
        rows.append(Row(kind, text, style))
    domain = [c for c in conditions if c.type not in ("Ready", "Reconciling", "Stalled")]
    if domain:
        text = ", ".join(
            f"{'✓' if c.status == 'True' else '✗' if c.status == 'False' else '?'} {c.type} ({c.reason})"
            for c in domain
        )
        rows.append(Row("Conditions", text))
    # A domain condition that does not hold says why (e.g. KafkaReachable: Kafka at ... unreachable).
    rows += [
        Row("", f"✗ {c.type}: {c.message}", "yellow") for c in domain if c.status == "False" and c.message
    ]
    return rows


def _requests(handled: Any) -> list[Row]:
    if handled is None:
        return []
    asked = {k: v for k, v in handled.model_dump(exclude_none=True).items() if v}
    return [Row("Handled", ", ".join(f"{k}={v}" for k, v in asked.items()))] if asked else []


def replayrun_rows(obj: dict[str, Any], now: datetime) -> list[Row]:
    spec = ReplayRunSpec.model_validate(obj.get("spec") or {})
    st = ReplayRunStatus.of(obj)
    phase = st.phase or "Pending"
    head = f"{phase}" + (f" ({st.reason})" if st.reason and st.reason != phase else "")
    head += f", for {ago(st.entered_at, now)}" if st.entered_at else ""
    if st.phase_deadline and phase not in FINAL_CODES:
        head += f", deadline in {human((st.phase_deadline - now).total_seconds())}"
    rows = [
        Row(
            "Job",
            f"StreamJob {spec.job_ref.name} → version {spec.version}"
            + (f", view {st.view}" if st.view else "")
            + f", approval {spec.approval}",
        ),
        Row("Phase", head, PHASE_STYLE.get(phase, "bold")),
    ]
    p = st.progress
    if p and p.target is not None:
        consumed = p.consumed or 0
        text = f"{p.percent or '?'} {consumed:,}/{p.target:,} records"
        if p.records_per_second is not None:
            text += f", {p.records_per_second:,.0f} records/s"
        if p.eta:
            text += f", ETA {p.eta}"
        rows.append(Row("Progress", text, bar=(consumed, p.target)))
    if st.lag and st.lag.total is not None:
        parts = sorted(st.lag.partitions, key=lambda x: -x.lag)[:4]
        detail = ", ".join(f"{x.topic}[{x.partition}] {x.lag:,}" for x in parts)
        more = len(st.lag.partitions) - len(parts)
        detail += f", +{more} more" if more > 0 else ""
        style = "" if st.lag.evaluation in (None, "OK") else "yellow"
        rows.append(
            Row(
                "Lag",
                f"{st.lag.total:,} records ({st.lag.evaluation or '?'})" + (f": {detail}" if detail else ""),
                style,
            )
        )
    if st.caught_up_since and phase == "CatchingUp":
        rows.append(
            Row("Caught up", f"for {ago(st.caught_up_since, now)} (needs {spec.catch_up.stable_for})")
        )
    if st.throttle:
        rows.append(Row("Throttle", f"{st.throttle.basis} → {st.throttle.bytes_per_second:,} B/s quota"))
    if st.output and (st.output.table or st.output.topic):
        out = st.output.table or st.output.topic or ""
        out += f", group {st.consumer_group}" if st.consumer_group else ""
        out += f", deployment {st.deployment}" if st.deployment else ""
        rows.append(Row("Output", out))
    rows += _checks("Preflight", st.preflight, brief=True)
    rows += _checks("Validation", st.validation, brief=False)
    if st.cutover:
        c = st.cutover
        text = f"{c.view}: {c.from_version or '-'} → {c.to_version}"
        text += f", at {c.at:%H:%M:%S}" if c.at else ", requested"
        text += f" ({c.duration_ms} ms)" if c.duration_ms is not None else ""
        rows.append(Row("Cutover", text))
    if st.cleanup:
        rows.append(Row("Cleanup", st.cleanup, "red" if st.cleanup == "Failed" else ""))
    return rows + _requests(st.handled_requests) + _conditions(st.conditions)


def streamjob_rows(obj: dict[str, Any], now: datetime) -> list[Row]:
    spec = StreamJobSpec.model_validate(obj.get("spec") or {})
    st = StreamJobStatus.of(obj)
    phase = st.phase or "Pending"
    rows = [
        Row(
            "Version",
            f"spec {spec.version}, active {st.active_version or '-'}, "
            f"stable {st.stable_version or '-'}" + (f", runtime {st.runtime}" if st.runtime else ""),
        ),
        Row("Phase", phase, PHASE_STYLE.get(phase, "bold")),
    ]
    if st.lag is not None:
        rows.append(
            Row("Lag", f"{st.lag:,} records" + (f", group {st.consumer_group}" if st.consumer_group else ""))
        )
    for d in st.deployments:
        rows.append(
            Row(
                "Deployment",
                f"{d.deployment} ({d.role}, {d.version}): job {d.job_state or '?'}, "
                f"lifecycle {d.lifecycle_state or '?'}, restarts {d.restarts}",
            )
        )
    if st.upgrade:
        u = st.upgrade
        rows.append(
            Row(
                "Upgrade",
                f"{u.step}: {u.from_version or '-'} → {u.to_version or '-'}"
                + (f", deadline in {human((u.deadline - now).total_seconds())}" if u.deadline else ""),
            )
        )
        rows += [Row("", g, "green" if g.startswith("✓") else "red") for g in _gates(u.gates)]
    if st.canary:
        c = st.canary
        rows.append(
            Row("Canary", f"{c.step} {c.version or ''}" + (f", result {c.result}" if c.result else ""))
        )
        rows += [Row("", g, "green" if g.startswith("✓") else "red") for g in _gates(c.gates)]
    if st.replay:
        rows.append(
            Row("Replay", f"ReplayRun {st.replay.run} ({st.replay.version}): {st.replay.phase or '?'}")
        )
    if st.history:
        recent = st.history[-3:]
        rows.append(
            Row("History", ", ".join(f"{h.version} {h.outcome} {ago(h.at, now)} ago" for h in recent))
        )
    return rows + _requests(st.handled_requests) + _conditions(st.conditions)


def materializedview_rows(obj: dict[str, Any], now: datetime) -> list[Row]:
    st = MaterializedViewStatus.of(obj)
    rows = [
        Row("Backend", st.backend or "?"),
        Row("Active", f"{st.active_version or '-'}, previous {st.previous_version or '-'}", "bold"),
    ]
    if st.last_cutover:
        rows.append(Row("Cutover", f"last {ago(st.last_cutover, now)} ago"))
    for v in st.versions:
        rows.append(Row("Version", f"{v.name}: {v.physical} ({v.state})"))
    return rows + _requests(st.handled_requests) + _conditions(st.conditions)


ROWS = {"StreamJob": streamjob_rows, "ReplayRun": replayrun_rows, "MaterializedView": materializedview_rows}


def rows_of(kind: str, obj: dict[str, Any], now: datetime) -> list[Row]:
    rows = ROWS[kind](obj, now)
    generation = obj.get("metadata", {}).get("generation")
    observed = CommonStatus.of(obj).observed_generation
    if generation is not None and (observed is None or observed < generation):
        seen = "not yet" if observed is None else f"generation {observed}"
        rows.insert(1, Row("Behind", f"the operator has seen {seen} of generation {generation}", "yellow"))
    return rows
