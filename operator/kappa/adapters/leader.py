"""Leader election on a coordination.k8s.io/v1 Lease: of several `kappa run` replicas, only the Lease's holder
runs the operator; the others wait, and one of them takes over when the holder stops renewing.

The algorithm is the official client's (kubernetes.leaderelection, a port of client-go's): a candidate takes
the Lease when it is free or when its record has not changed for `lease_duration` on the candidate's own
clock (no clock comparison between replicas); the holder renews every `retry_period` with a
compare-and-swap on the Lease's resourceVersion. A holder that cannot renew for `renew_deadline`
(< `lease_duration`) stops acting: the process exits with EXIT_LOST_LEASE, as client-go's users do, and its
Deployment restarts it as a candidate. A standby never starts Kopf, so it acts on nothing.

Takeover after the holder dies: at most lease_duration + 2 * retry_period until the standby holds the Lease
(it saw the last renewal up to one period late, and looks once a period), then Kopf's start.

What this module adds to the library, and why:
- every API call has a timeout and never raises: the library's thread dies on a connection error (only
  ApiException is caught), and a leader whose thread died would act on without renewing;
- a watchdog exits the leader when no renewal succeeded for renew_deadline, whatever the library's thread is
  doing (a call hung until its timeout stretches the library's own bound);
- a leader that reads another holder in the Lease exits at once (the library retries until its deadline);
- release on a clean stop, so a rolling update hands over within a retry period, not a lease duration;
- leaseTransitions counted, and a /healthz for the standby (Kopf serves it once leading).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from kappa.adapters.kube import load_api_client
from kappa.adapters.metrics import leader as leader_gauge

log = logging.getLogger("kappa.leader")

EXIT_LOST_LEASE = 75  # the holder could not renew in time, or someone else holds the Lease now
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def own_namespace() -> str:
    """In a pod: the pod's namespace; else the kubeconfig context's namespace (or `default`)."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    if SERVICE_ACCOUNT_NAMESPACE.is_file() and not os.environ.get("KUBECONFIG"):
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    try:
        _, context = config.list_kube_config_contexts()
        return str(context["context"].get("namespace") or "default")
    except (config.ConfigException, KeyError, TypeError):
        return "default"


def own_identity() -> str:
    """The pod's name (POD_NAME, from the downward API): a container restarted in its pod takes its
    Lease back at once, as the one before it is dead. Outside a pod: host and process id (unique while
    alive)."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}/{os.getpid()}"


class _Lock(LeaseLock):
    """The library's LeaseLock with a timeout on every call, no exception escaping, a transition count, and
    the time of the last renewal seen by the server."""

    def __init__(
        self, name: str, namespace: str, identity: str, api: client.ApiClient, timeout: float
    ) -> None:
        super().__init__(name, namespace, identity)
        self.api_instance = client.CoordinationV1Api(api)
        self.timeout = timeout
        self.renewed_at = 0.0  # time.monotonic() of the last successful create or update holding the Lease
        self.stopping = False
        self.on_read: Callable[[str | None], None] = lambda holder: None

    def get(self, name: str, namespace: str) -> tuple[bool, Any]:
        try:
            lease = self.api_instance.read_namespaced_lease(name, namespace, _request_timeout=self.timeout)
        except Exception as exc:  # an ApiException's body says 404; anything else is retried next period
            return False, exc
        self.lease_reference = lease
        self.on_read(lease.spec.holder_identity if lease.spec else None)
        return True, self.get_lock_object(lease)

    def create(self, name: str, namespace: str, election_record: Any) -> bool:
        if self.stopping:
            return False
        spec: Any = self.get_lease_spec(election_record)
        spec.lease_transitions = 0
        body = client.V1Lease(
            metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/name": "kappa-operator"}),
            spec=spec,
        )
        try:
            self.lease_reference = self.api_instance.create_namespaced_lease(
                namespace, body, _request_timeout=self.timeout
            )
        except Exception as exc:
            log.debug("could not create the Lease %s/%s: %s", namespace, name, exc)
            return False
        self.renewed_at = time.monotonic()
        return True

    def update(self, name: str, namespace: str, updated_record: Any) -> bool:
        if self.lease_reference is None or self.stopping:
            return False
        lease = self.lease_reference
        previous = lease.spec.holder_identity if lease.spec else None
        spec: Any = self.get_lease_spec(updated_record, lease.spec)
        lease.spec = spec
        if previous != spec.holder_identity:
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        try:
            # replace carries the resourceVersion read: a compare-and-swap (409 if anyone wrote since).
            self.lease_reference = self.api_instance.replace_namespaced_lease(
                name, namespace, lease, _request_timeout=self.timeout
            )
        except Exception as exc:
            log.debug("could not update the Lease %s/%s: %s", namespace, name, exc)
            return False
        if updated_record.holder_identity == self.identity:
            self.renewed_at = time.monotonic()
        return True

    def release(self) -> bool:
        """Give the Lease up if this process still holds it: the next candidate takes it at its next look."""
        self.stopping = True
        try:
            lease = self.api_instance.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout
            )
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return False
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = datetime.datetime.now(datetime.UTC)
            self.api_instance.replace_namespaced_lease(
                self.name, self.namespace, lease, _request_timeout=self.timeout
            )
        except Exception as exc:
            log.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        return True


class LeaderElection:
    """`wait_until_leading()` blocks until this process holds the Lease; from then on the Lease is renewed in
    a thread, and the process exits with EXIT_LOST_LEASE the moment it may no longer be the holder."""

    def __init__(
        self,
        lease: str,
        *,
        lease_duration: int = 15,
        renew_deadline: float = 10,
        retry_period: float = 2,
        identity: str | None = None,
        api: client.ApiClient | None = None,
        exit: Callable[[int], Any] = os._exit,
    ) -> None:
        namespace, _, name = lease.rpartition("/")
        self.namespace = namespace or own_namespace()
        self.name = name
        self.identity = identity or own_identity()
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._exit = exit
        self._lock = _Lock(name, self.namespace, self.identity, api or load_api_client(), retry_period)
        self._lock.on_read = self._read
        self._leading = threading.Event()
        self._election = leaderelection.LeaderElection(
            electionconfig.Config(
                self._lock,
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
                onstarted_leading=self._leading.set,
                onstopped_leading=self._stopped_leading,
            )
        )
        self._thread = threading.Thread(target=self._election.run, name="leader-election", daemon=True)
        # The library says each look at INFO ("yet to finish lease_duration ..."): one line a period.
        logging.getLogger("leaderelection").setLevel(logging.WARNING)

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def holder(self) -> str | None:
        record = self._election.observed_record
        return None if record is None else record.holder_identity

    def wait_until_leading(self, health_host: str = "127.0.0.1", health_port: int = 0) -> None:
        leader_gauge.set(0)
        standby = _StandbyHealth(self, health_host, health_port) if health_port else None
        self._thread.start()
        told = ""
        try:
            while not self._leading.wait(self.retry_period):
                if not self._thread.is_alive():
                    raise RuntimeError(f"the election on the Lease {self.where} ended")
                holder = self.holder() or ""
                if holder != told:
                    told = holder
                    log.info(
                        "Standby as %s: the Lease %s is held by %s; taking over when it is not renewed "
                        "for %ss.",
                        self.identity,
                        self.where,
                        holder or "nobody",
                        self._election.election_config.lease_duration,
                    )
        finally:
            if standby:
                standby.close()
        leader_gauge.set(1)
        log.info("Leading as %s: holding the Lease %s.", self.identity, self.where)
        threading.Thread(target=self._watchdog, name="leader-watchdog", daemon=True).start()

    def release(self) -> None:
        if self._leading.is_set() and self._lock.release():
            log.info("Released the Lease %s.", self.where)
        leader_gauge.set(0)

    def _read(self, holder: str | None) -> None:
        # The library would retry until the renew deadline; a leader that sees another holder stops at once.
        if self._leading.is_set() and not self._lock.stopping and holder and holder != self.identity:
            self._lost(f"the Lease {self.where} is held by {holder}")

    def _stopped_leading(self) -> None:
        if not self._lock.stopping:
            self._lost(f"could not renew the Lease {self.where} for {self.renew_deadline}s")

    def _watchdog(self) -> None:
        while not self._lock.stopping:
            late = time.monotonic() - self._lock.renewed_at
            if late > self.renew_deadline:
                self._lost(f"no renewal of the Lease {self.where} for {late:.1f}s")
                return
            time.sleep(min(0.5, self.retry_period / 2))

    def _lost(self, why: str) -> None:
        self._lock.stopping = True
        leader_gauge.set(0)
        log.critical("Lost leadership (%s): exiting so that only one replica acts.", why)
        logging.shutdown()
        self._exit(EXIT_LOST_LEASE)


class _StandbyHealth:
    """/healthz while standing by: 200 while the election runs, 503 if its thread died."""

    def __init__(self, election: LeaderElection, host: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/healthz":
                    self.send_error(404)
                    return
                alive = election._thread.is_alive()
                body = json.dumps(
                    {"role": "standby", "lease": election.where, "holder": election.holder(), "alive": alive}
                ).encode()
                self.send_response(200 if alive else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # probes are not news
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="standby-health", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
