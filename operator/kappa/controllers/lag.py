"""Operator-wide lag tracking: one LagMonitor per Kafka connection (a cluster and the credentials it is
reached with), polled in the background, exported as gauges.

Controllers call `track`/`untrack`; one task polls every tracked group of every cluster once per interval,
the clusters concurrently, so that one that is down (each request waits out its timeout) delays no other.
A failing cluster is logged by its monitor when polls start failing and when they recover, not per poll;
`unreachable()` says why, for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kopf

from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.lag_monitor import GroupLag, LagMonitor
from kappa.controllers import failpoints

log = logging.getLogger(__name__)

STOP_WITHIN = 2.0
"""Seconds a stop waits for the lag loop to end (it cancels the polls in flight) before it cancels it."""


@dataclass
class LagTracking:
    interval: float = 10.0
    monitors: dict[KafkaConnection, LagMonitor] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    last_round: float = field(default_factory=time.monotonic)
    """When the loop last started the clusters' polls (time.monotonic), or started."""
    on_change: Callable[[str, str, bool], None] | None = None
    """Told (namespace, job, urgent) after a poll that moved a job's lag (urgent: its verdict, or the
    cluster's reachability, changed): its StreamJob shows both, and is not looked at otherwise at rest."""

    def monitor(self, connection: KafkaConnection | str) -> LagMonitor:
        key = KafkaConnection.of(connection)
        if key not in self.monitors:
            self.monitors[key] = LagMonitor(KafkaAdmin(key))
        return self.monitors[key]

    def track(
        self, connection: KafkaConnection | str, group: str, topics: list[str], labels: dict[str, str]
    ) -> None:
        # A group lives in one cluster, followed through one connection; forget it elsewhere (the job may have
        # moved clusters, or its credentials changed).
        key = KafkaConnection.of(connection)
        for other, monitor in self.monitors.items():
            if other != key and monitor.tracks(group):
                monitor.untrack(group)
        self.monitor(key).track(group, topics, labels=labels)

    def retain(self, namespace: str, job: str, groups: set[str]) -> None:
        """Stop following the job's other groups (a retired or rolled-back version's), so its gauges go."""
        for monitor in self.monitors.values():
            for group in monitor.groups_of(namespace, job):
                if group not in groups:
                    monitor.untrack(group)

    def untrack(self, group: str) -> None:
        for monitor in self.monitors.values():
            monitor.untrack(group)

    def latest(self, group: str) -> GroupLag | None:
        for monitor in self.monitors.values():
            if (found := monitor.latest(group)) is not None:
                return found
        return None

    def unreachable(self, connection: KafkaConnection | str | None) -> str | None:
        """Why the cluster cannot be polled ("Kafka at X unreachable: ..."), or None while it answers."""
        if not connection:
            return None
        monitor = self.monitors.get(KafkaConnection.of(connection))
        if monitor is None:
            return None
        # Only an outage: a poll failing for another reason (a topic deleted, a group's offsets expired) is
        # not Kafka being unreachable, and the lag monitor logs it once itself.
        return monitor.admin.health.unreachable

    def stalled(self, now: float | None = None) -> str | None:
        """Why the loop looks stuck (no round begun for long), or None. A round only starts each cluster's
        poll that is not still running, so ten intervals and two minutes more are no slow cluster."""
        limit = 10 * self.interval + 120
        idle = (time.monotonic() if now is None else now) - self.last_round
        return f"the lag poll has not ended a round in {idle:.0f}s" if idle > limit else None

    async def run(self) -> None:
        """Each cluster is polled on its own: one that does not answer (each request waits out its timeout)
        delays no other's poll. A cluster whose poll still runs is not polled again until it ends."""
        polling: dict[KafkaConnection, asyncio.Task[Any]] = {}
        try:
            while not self.stop.is_set():
                for key, monitor in list(self.monitors.items()):
                    if key not in polling or polling[key].done():
                        poll = self._poll(monitor)
                        polling[key] = asyncio.create_task(poll, name=f"kappa-lag-{key.bootstrap}")
                self.last_round = time.monotonic()
                if "lag-poll" in failpoints._armed().split(","):  # tests: the loop dies as a bug would end it
                    raise RuntimeError("failpoint lag-poll")
                try:
                    await asyncio.wait_for(self.stop.wait(), timeout=self.interval)
                except TimeoutError:
                    continue
        finally:
            running = [task for task in polling.values() if not task.done()]
            for task in running:
                task.cancel()
            if running:
                await asyncio.wait(running)

    async def _poll(self, monitor: LagMonitor) -> None:
        before = {group: _glance(monitor.latest(group)) for group in monitor.groups}
        was_down = monitor.admin.health.unreachable
        # A failed poll is counted and, when polls start or stop failing, logged by its monitor.
        with contextlib.suppress(Exception):
            await monitor.poll()
        if self.on_change is None:
            return
        reachability = (monitor.admin.health.unreachable is None) != (was_down is None)
        told: set[tuple[str, str]] = set()
        for group in monitor.groups:
            after = _glance(monitor.latest(group))
            labels = monitor.labels_of(group)
            namespace, job = labels.get("namespace"), labels.get("job")
            if namespace is None or job is None or (after == before.get(group) and not reachability):
                continue
            # A first figure, a new verdict or Kafka coming or going is said at once; a lag that moved,
            # at most every LAG_REFRESH.
            first = before.get(group) is None
            urgent = reachability or first or (after or (0, ""))[1] != (before.get(group) or (0, ""))[1]
            if (namespace, job) not in told or urgent:
                self.on_change(namespace, job, urgent)
                told.add((namespace, job))


def _glance(lag: GroupLag | None) -> tuple[int, str] | None:
    """What a StreamJob shows of a group's lag: the total (the Lag column) and the verdict."""
    return None if lag is None else (lag.total, str(lag.status.status))


@kopf.on.startup()
async def start_lag_tracking(memo: kopf.Memo, **_: Any) -> None:
    tracking = LagTracking(interval=float(os.environ.get("KAPPA_LAG_INTERVAL", "10")))
    memo.lag = tracking
    memo.lag_task = asyncio.create_task(tracking.run(), name="kappa-lag-poll")
    memo.lag_task.add_done_callback(_report_end)


def _report_end(task: asyncio.Task[None]) -> None:
    """The loop ends only when the operator stops; any other end is said at once, with its traceback, and
    /healthz fails from then on (controllers/health.py)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("the lag poll ended: %s; /healthz fails from now on", error, exc_info=error)


@kopf.on.cleanup()
async def stop_lag_tracking(memo: kopf.Memo, **_: Any) -> None:
    tracking: LagTracking | None = getattr(memo, "lag", None)
    if tracking is not None:
        tracking.stop.set()
        # A loop that died has said so (_report_end); its error must not hold up the stop (Kopf would retry
        # this cleanup every minute until the process is killed). A round in flight ends at once: it may be
        # waiting out a cluster that does not answer (up to 35 s), and SIGTERM must be honoured before that.
        _ended, running = await asyncio.wait([memo.lag_task], timeout=STOP_WITHIN)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
