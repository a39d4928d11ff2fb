"""`kubectl kappa status KIND [NAME]`: what a StreamJob, ReplayRun or MaterializedView is doing, with its last
events. On a terminal it is a rich view with a progress bar; elsewhere plain lines. The rows come from
kappa.cli.status_rows; `--watch` is kappa.cli.watch."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from kappa.adapters.cli_cluster import Cluster, kind_of
from kappa.cli import codes
from kappa.cli.status_rows import rows_of


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
