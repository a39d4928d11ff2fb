"""`kubectl kappa status KIND NAME --watch` (and `replay --watch`): follow a resource, live on a terminal or
one plain line per change elsewhere, until a ReplayRun ends (its exit code by phase, see kappa.cli.codes),
--timeout passes or Ctrl-C."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

from kappa.adapters.cli_cluster import CliError, Cluster, kind_of
from kappa.api.base import CommonStatus
from kappa.api.materializedview import MaterializedViewStatus
from kappa.api.replayrun import ReplayRunStatus
from kappa.api.streamjob_status import StreamJobStatus
from kappa.cli import codes
from kappa.cli.status import rich_view
from kappa.cli.status_rows import FINAL_CODES

STATUS: dict[str, type[CommonStatus]] = {
    "StreamJob": StreamJobStatus,
    "ReplayRun": ReplayRunStatus,
    "MaterializedView": MaterializedViewStatus,
}


def summary(kind: str, obj: dict[str, Any]) -> str:
    """One line of what changed, for watching off a terminal."""
    if kind == "ReplayRun":
        run = ReplayRunStatus.of(obj)
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
        job = StreamJobStatus.of(obj)
        step = f" upgrade={job.upgrade.step}" if job.upgrade else ""
        return f"phase={job.phase or 'Pending'} active={job.active_version or '-'} lag={job.lag}{step}"
    view = MaterializedViewStatus.of(obj)
    return f"active={view.active_version or '-'} previous={view.previous_version or '-'}"


def outcome(kind: str, obj: dict[str, Any], until: str) -> int | None:
    """The exit code once a watched ReplayRun has ended (or cut over, with --until cutover); None meanwhile.
    StreamJobs and MaterializedViews have no end: watched until --timeout or Ctrl-C."""
    if kind != "ReplayRun":
        return None
    phase = ReplayRunStatus.of(obj).phase
    if until == "cutover" and phase == "Observing":
        return codes.OK
    return FINAL_CODES.get(str(phase))


def final_message(kind: str, obj: dict[str, Any], code: int) -> str:
    st = STATUS[kind].of(obj)
    meta = obj["metadata"]
    stalled = next((c for c in st.conditions if c.type in ("Stalled", "Ready") and c.status == "True"), None)
    detail = f": {stalled.message}" if stalled and stalled.message else ""
    phase = getattr(st, "phase", None)  # a MaterializedView has none
    return f"{kind} {meta['namespace']}/{meta['name']} {phase} (exit {code}){detail}"


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
