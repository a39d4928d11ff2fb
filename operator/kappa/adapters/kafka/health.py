"""Whether a Kafka cluster answers, said once per outage: `Reachability` (pure: a sequence of observations
makes a `Transition` only on a change of state), and `ClusterHealth`, one per connection (`cluster_health`),
shared by every client of that connection, which logs "Kafka at X unreachable" and "answers again"."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from kappa.adapters.kafka.connection import KafkaConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    """A change of state worth one log line: `down` at WARNING, back up at INFO."""

    down: bool
    message: str


@dataclass
class Reachability:
    """Whether a component answers, from a sequence of observations; pure (the caller passes the time).

    Only changes of state make a Transition: the first failure (and the first after a recovery), and the
    first success after failures. Failures while down are counted, not reported, so a client that retries ten
    times a second says so once. The first success of all is no transition: nothing was wrong before it.
    """

    what: str
    """How log lines name the component, e.g. "Kafka at broker-0:9092"."""
    failing: str = "unreachable"
    """What the down line says of it: "Kafka at X unreachable: ...", "lag poll of X failing: ..."."""
    up: bool | None = None
    """None until the first observation."""
    down_since: float = 0.0
    failures: int = 0
    """Failures since the last success."""
    reason: str = ""
    """Why it went down, while it is down."""

    def observe(self, ok: bool, reason: str = "", now: float = 0.0) -> Transition | None:
        was_down = self.up is False
        if ok:
            failures, self.up, self.failures, self.reason = self.failures, True, 0, ""
            if not was_down:
                return None
            return Transition(
                False,
                f"{self.what} answers again, after {now - self.down_since:.0f}s and {failures} failure(s)",
            )
        self.failures += 1
        if was_down:
            return None
        self.up, self.down_since, self.reason = False, now, reason or "no answer"
        return Transition(True, f"{self.what} {self.failing}: {self.reason}")


class ClusterHealth:
    """The Reachability of one Kafka cluster, shared by every client of it (admin, consumers, quota calls),
    so that "Kafka at X unreachable" is said once whichever client noticed. Thread-safe: admin results arrive
    on the event loop, consumers run in worker threads."""

    def __init__(self, connection: KafkaConnection | str) -> None:
        self.connection = KafkaConnection.of(connection)
        self.bootstrap_servers = self.connection.bootstrap
        self._state = Reachability(f"Kafka at {self.bootstrap_servers}")
        self._lock = threading.Lock()

    @property
    def unreachable(self) -> str | None:
        """Why the cluster is down ("Kafka at X unreachable: ..."); None while it answers (or is unknown)."""
        state = self._state
        return f"{state.what} unreachable: {state.reason}" if state.up is False else None

    def observe(self, ok: bool, reason: str = "") -> None:
        with self._lock:
            transition = self._state.observe(ok, reason, time.monotonic())
        if transition is not None:
            log.log(logging.WARNING if transition.down else logging.INFO, "%s", transition.message)


_CLUSTERS: dict[KafkaConnection, ClusterHealth] = {}
_CLUSTERS_LOCK = threading.Lock()


def cluster_health(connection: KafkaConnection | str) -> ClusterHealth:
    """The health of a cluster as one connection sees it (credentials refused are not another's outage)."""
    key = KafkaConnection.of(connection)
    with _CLUSTERS_LOCK:
        if key not in _CLUSTERS:
            _CLUSTERS[key] = ClusterHealth(key)
        return _CLUSTERS[key]
