"""`kubectl kappa status KIND NAME [--watch]`: what a StreamJob, ReplayRun or MaterializedView is doing, read
from its status (parsed with the API models in kappa.api) and its last events. On a terminal it is a rich view
with a progress bar; elsewhere plain lines, one per change when watching."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kappa.api.base import Condition
from kappa.api.materializedview import MaterializedViewStatus
from kappa.api.replayrun import CheckResult, ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import GateResult, StreamJobSpec, StreamJobStatus
from kappa.cli import codes
from kappa.cli.kube import CliError, Cluster, kind_of

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
    st = ReplayRunStatus.model_validate(obj.get("status") or {})
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
    st = StreamJobStatus.model_validate(obj.get("status") or {})
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
    st = MaterializedViewStatus.model_validate(obj.get("status") or {})
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
    observed = (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        seen = "not yet" if observed is None else f"generation {observed}"
        rows.insert(1, Row("Behind", f"the operator has seen {seen} of generation {generation}", "yellow"))
    return rows


def event_line(e: dict[str, Any]) -> str:
    count = f" (x{e['count']})" if e["count"] > 1 else ""
    return f"{e['at']:%H:%M:%S} {e['type']} {e['reason']}: {e['message']}{count}"


def plain(kind: str, obj: dict[str, Any], events: list[dict[str, Any]], now: datetime) -> str:
    meta = obj["metadata"]
    lines = [f"{kind} {meta['namespace']}/{meta['name']}"]
    for row in rows_of(kind, obj, now):
        lines.append(f"  {row.label + ':' if row.label else '':<12} {row.text}")
    if events:
        lines.append("  Events:")
        lines += [f"    {event_line(e)}" for e in events]
    return "\n".join(lines)


def rich_view(kind: str, obj: dict[str, Any], events: list[dict[str, Any]], now: datetime) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold dim", no_wrap=True)
    grid.add_column()
    for row in rows_of(kind, obj, now):
        if row.bar:
            done, total = row.bar
            line = Table.grid(padding=(0, 1))
            line.add_row(
                ProgressBar(
                    total=max(total, 1),
                    completed=min(done, total),
                    width=30,
                    complete_style="green",
                    finished_style="bold green",
                ),
                Text(row.text),
            )
            grid.add_row(row.label, line)
        else:
            grid.add_row(row.label, Text(row.text, style=row.style))
    parts: list[Any] = [grid]
    if events:
        table = Table(title="Last events", title_justify="left", box=None, show_header=False, pad_edge=False)
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for e in events:
            table.add_row(
                f"{e['at']:%H:%M:%S}",
                Text(e["type"], style="yellow" if e["type"] == "Warning" else ""),
                e["reason"],
                e["message"] + (f" (x{e['count']})" if e["count"] > 1 else ""),
            )
        parts.append(table)
    meta = obj["metadata"]
    return Panel(
        Group(*parts),
        title=f"[bold]{kind}[/] {meta['namespace']}/{meta['name']}",
        title_align="left",
        subtitle=f"{now:%H:%M:%S}",
        subtitle_align="right",
    )


def summary(kind: str, obj: dict[str, Any]) -> str:
    """One line of what changed, for watching off a terminal."""
    st = obj.get("status") or {}
    if kind == "ReplayRun":
        run = ReplayRunStatus.model_validate(st)
        parts = [f"phase={run.phase or 'Pending'}"]
        if run.reason:
            parts.append(f"reason={run.reason}")
        p = run.progress
        if p and p.target is not None:
            parts.append(f"progress={p.percent or '?'} ({p.consumed or 0}/{p.target})")
            if p.records_per_second is not None:
                parts.append(f"rate={p.records_per_second:.0f}/s")
            if p.eta:
                parts.append(f"eta={p.eta}")
        if run.lag and run.lag.total is not None:
            parts.append(f"lag={run.lag.total}")
        failed = [c.name for c in run.validation if not c.passed] + [
            c.name for c in run.preflight if not c.passed
        ]
        if failed:
            parts.append(f"failed={','.join(failed)}")
        if run.cleanup:
            parts.append(f"cleanup={run.cleanup}")
        return " ".join(parts)
    if kind == "StreamJob":
        job = StreamJobStatus.model_validate(st)
        step = f" upgrade={job.upgrade.step}" if job.upgrade else ""
        return f"phase={job.phase or 'Pending'} active={job.active_version or '-'} lag={job.lag}{step}"
    view = MaterializedViewStatus.model_validate(st)
    return f"active={view.active_version or '-'} previous={view.previous_version or '-'}"


def outcome(kind: str, obj: dict[str, Any], until: str) -> int | None:
    """The exit code once a watched ReplayRun has ended (or cut over, with --until cutover); None meanwhile.
    StreamJobs and MaterializedViews have no end: watched until --timeout or Ctrl-C."""
    if kind != "ReplayRun":
        return None
    phase = (obj.get("status") or {}).get("phase")
    if until == "cutover" and phase == "Observing":
        return codes.OK
    return FINAL_CODES.get(str(phase))


def final_message(kind: str, obj: dict[str, Any], code: int) -> str:
    st = obj.get("status") or {}
    meta = obj["metadata"]
    stalled = next(
        (
            c
            for c in st.get("conditions") or []
            if c.get("type") in ("Stalled", "Ready") and c.get("status") == "True"
        ),
        None,
    )
    detail = f": {stalled['message']}" if stalled and stalled.get("message") else ""
    return f"{kind} {meta['namespace']}/{meta['name']} {st.get('phase')} (exit {code}){detail}"


def show(cluster: Cluster, kind_spelling: str, name: str | None, *, terminal: bool | None = None) -> int:
    kind, _ = kind_of(kind_spelling)
    now = datetime.now(UTC)
    objs = [cluster.must_get(kind, name)] if name else cluster.list_all(kind)
    if not objs:
        print(f"no {kind} in namespace {cluster.namespace}")
        return codes.OK
    terminal = sys.stdout.isatty() if terminal is None else terminal
    if terminal:
        from rich.console import Console

        console = Console()
        for obj in objs:
            events = cluster.events(kind, obj["metadata"]["name"]) if name else []
            console.print(rich_view(kind, obj, events, now))
    else:
        for obj in objs:
            events = cluster.events(kind, obj["metadata"]["name"]) if name else []
            print(plain(kind, obj, events, now))
    return codes.OK


def watch(
    cluster: Cluster,
    kind_spelling: str,
    name: str,
    *,
    until: str = "succeeded",
    timeout: float | None = None,
    interval: float = 1.0,
    terminal: bool | None = None,
) -> int:
    """Follow the resource until a ReplayRun ends (exit code by its phase, see codes), --timeout passes (6)
    or Ctrl-C (130)."""
    kind, _ = kind_of(kind_spelling)
    terminal = sys.stdout.isatty() if terminal is None else terminal
    deadline = time.monotonic() + timeout if timeout else None
    try:
        if terminal:
            return _watch_live(cluster, kind, name, until, deadline, interval)
        return _watch_plain(cluster, kind, name, until, deadline, interval)
    except KeyboardInterrupt:
        return codes.INTERRUPTED


def _look(cluster: Cluster, kind: str, name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    obj = cluster.get(kind, name)
    if obj is None:
        raise CliError(f"{kind} {cluster.namespace}/{name} not found (deleted?)")
    return obj, cluster.events(kind, name)


def _watch_live(
    cluster: Cluster, kind: str, name: str, until: str, deadline: float | None, interval: float
) -> int:
    from rich.console import Console
    from rich.live import Live

    console = Console()
    obj, events = _look(cluster, kind, name)
    with Live(rich_view(kind, obj, events, datetime.now(UTC)), console=console, auto_refresh=False) as live:
        while True:
            live.update(rich_view(kind, obj, events, datetime.now(UTC)), refresh=True)
            code = outcome(kind, obj, until)
            if code is not None:
                break
            if deadline and time.monotonic() > deadline:
                code = codes.TIMEOUT
                break
            time.sleep(interval)
            obj, events = _look(cluster, kind, name)
    if code == codes.TIMEOUT:
        console.print(f"timed out: {kind} {cluster.namespace}/{name} is still {summary(kind, obj)}")
    else:
        console.print(final_message(kind, obj, code))
    return code


def _watch_plain(
    cluster: Cluster, kind: str, name: str, until: str, deadline: float | None, interval: float
) -> int:
    last, seen = "", set()
    while True:
        obj, events = _look(cluster, kind, name)
        now = datetime.now(UTC)
        line = summary(kind, obj)
        for e in events:
            key = (e["at"], e["reason"], e["message"])
            if key not in seen:
                seen.add(key)
                print(f"{now:%H:%M:%S} event {e['type']} {e['reason']}: {e['message']}", flush=True)
        if line != last:
            print(f"{now:%H:%M:%S} {kind} {cluster.namespace}/{name} {line}", flush=True)
            last = line
        code = outcome(kind, obj, until)
        if code is not None:
            print(final_message(kind, obj, code), flush=True)
            return code
        if deadline and time.monotonic() > deadline:
            print(f"timed out: {kind} {cluster.namespace}/{name} is still {line}", flush=True)
            return codes.TIMEOUT
        time.sleep(interval)
