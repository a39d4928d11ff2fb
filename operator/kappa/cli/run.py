"""`kappa run`: the operator itself. Its flags, the environment the controllers read when they register,
Kopf's logging and the client libraries' quiet, the metrics and health endpoints, leader election, and a
prompt exit once Kopf has stopped."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def run_arguments(run: argparse.ArgumentParser) -> None:
    """The flags of `kappa run` (its defaults from the KAPPA_* environment where it has them)."""
    run.add_argument("--kubeconfig", help="kubeconfig file; default $KUBECONFIG or in-cluster")
    run.add_argument("-n", "--namespace", action="append", help="watch only these namespaces (repeatable)")
    run.add_argument("--health-host", default="127.0.0.1")
    run.add_argument("--health-port", type=int, default=0, help="serve /healthz on this port (0: off)")
    run.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics here (0: off)")
    run.add_argument("--lag-interval", type=float, default=10.0, help="seconds between consumer lag polls")
    run.add_argument(
        "--reconcile-interval", type=float, default=10.0, help="seconds between level-triggered re-checks"
    )
    run.add_argument(
        "--runtime",
        choices=["FlinkDeployment", "Session"],
        default=os.environ.get("KAPPA_RUNTIME", "FlinkDeployment"),
        help="where StreamJobs without spec.runtime run: FKO FlinkDeployments, or a Flink session cluster",
    )
    run.add_argument(
        "--flink-rest-url",
        default=os.environ.get("KAPPA_FLINK_REST_URL"),
        help="the session cluster's REST endpoint, for jobs without spec.runtime.session.restURL",
    )
    run.add_argument(
        "--sql-runner-jar",
        default=os.environ.get("KAPPA_SQL_RUNNER_JAR"),
        help="the SQL runner jar the session runtime uploads for SQL jobs (testbed/flink.sh runner-jar)",
    )
    run.add_argument(
        "--savepoint-dir",
        default=os.environ.get("KAPPA_SAVEPOINT_DIR"),
        help="where the session runtime asks for savepoints; default: the cluster's savepoint directory",
    )
    run.add_argument(
        "--leader-election",
        metavar="[NAMESPACE/]LEASE",
        help="act only while holding this coordination.k8s.io Lease, so that of several replicas one acts; "
        "the namespace defaults to the operator's own (off when not given)",
    )
    run.add_argument("--lease-duration", type=int, default=15, help="seconds a silent leader keeps its Lease")
    run.add_argument("--renew-deadline", type=float, default=10, help="seconds a leader may fail to renew")
    run.add_argument("--retry-period", type=float, default=2, help="seconds between renewals and looks")
    run.add_argument("--log-format", choices=["full", "json"], default="full", help="json for log shippers")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    import faulthandler

    # A fatal signal (SIGSEGV, SIGABRT, SIGBUS...) prints every thread's Python stack to stderr ("Fatal Python
    # error: Segmentation fault") before the process dies of it. librdkafka's threads block all signals: a
    # segfault in one of them kills the process at once, with no stack, and only the exit code (-11) says so.
    faulthandler.enable(all_threads=True)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(args.kubeconfig).resolve())
    # Read by the controllers when they register their timers, so set before importing them.
    os.environ["KAPPA_LAG_INTERVAL"] = str(args.lag_interval)
    os.environ["KAPPA_RECONCILE_INTERVAL"] = str(args.reconcile_interval)
    # The job runtimes' operator-wide defaults (controllers/job_runtimes.py).
    os.environ["KAPPA_RUNTIME"] = args.runtime
    for key, value in (
        ("KAPPA_FLINK_REST_URL", args.flink_rest_url),
        ("KAPPA_SQL_RUNNER_JAR", args.sql_runner_jar),
        ("KAPPA_SAVEPOINT_DIR", args.savepoint_dir),
    ):
        if value:
            os.environ[key] = str(Path(value).resolve()) if key == "KAPPA_SQL_RUNNER_JAR" else value
    load_operator()
    import kopf

    # Kopf's loggers name the resource in every line: [namespace/name] in plain text, "object" in JSON.
    kopf.configure(
        verbose=args.verbose,
        log_format={"json": kopf.LogFormat.JSON, "full": kopf.LogFormat.FULL}[args.log_format],
        log_refkey="object",
        log_prefix=args.log_format == "full",
    )
    _quiet_client_libraries(verbose=args.verbose)

    if args.metrics_port:
        from kappa.adapters.metrics import serve

        serve(args.metrics_port, args.health_host)
    namespaces = args.namespace or []
    election = None
    if args.leader_election:  # a standby runs no Kopf at all, so it acts on nothing (docs/two-replicas.md)
        from kappa.adapters.leader import LeaderElection

        election = LeaderElection(
            args.leader_election,
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
        )
        election.wait_until_leading(args.health_host, args.health_port)
    try:
        kopf.run(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
            liveness_endpoint=f"http://{args.health_host}:{args.health_port}/healthz"
            if args.health_port
            else None,
        )
    finally:
        if election:
            election.release()
    _exit_promptly(0)
    return 0


def load_operator() -> None:
    """Import Kopf and the controllers, which register their handlers. What this imports is what the
    operator's memory at rest starts from (tests/unit/test_start_imports.py)."""
    from kappa.adapters.lazy import import_kubernetes

    import_kubernetes()  # before Kopf, which imports it too
    import kappa.controllers  # noqa: F401  (registers the handlers)


EXIT_GRACE = 3.0
"""Seconds the process waits, once Kopf has stopped, for calls still in flight on worker threads."""


def _exit_promptly(code: int) -> None:
    """Kopf has stopped: handlers ended or cancelled, cleanups run. Calls it cancelled may still run on worker
    threads (a Kafka request to a cluster that hangs waits out its 30 s timeout), and the interpreter would
    join them all before it exits: SIGTERM would be honoured only after them, or not before Kubernetes'
    SIGKILL. Give them EXIT_GRACE seconds to finish what they write, then exit. The state is in the API
    server; a call cut here is what a crash cuts, and the controllers are crash-safe."""
    import logging
    import threading
    import time

    deadline = time.monotonic() + EXIT_GRACE
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _quiet_client_libraries(*, verbose: bool) -> None:
    """A component that is down is said once, by the adapters (one line when it goes, one when it is back).
    The client libraries would say it on every reconnect attempt: kafka-python logs each at ERROR (the quota
    calls raise what failed, so nothing is lost); librdkafka's routine lines, and httpx's line per request,
    are for --verbose."""
    import logging

    logging.getLogger("kafka").setLevel(logging.INFO if verbose else logging.CRITICAL)
    if verbose:  # librdkafka logs to stderr itself, from CRITICAL up unless asked (adapters/kafka/)
        os.environ.setdefault("KAPPA_LIBRDKAFKA_LOG_LEVEL", "6")
    # Quiet when healthy: Kopf logs every handler and timer run at INFO ("Timer 'poll_streamjob' succeeded.",
    # six lines a minute per resource), and aiohttp every /healthz probe; the operator's own lines (one per
    # state change) and Kopf's warnings and errors stay.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # httpx logs every request at INFO: the session runtime polls Flink's REST API on every look.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO if verbose else logging.WARNING)
