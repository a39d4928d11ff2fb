"""The `kappa` command (also installed as `kubectl-kappa`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml


def _cmd_run(args: argparse.Namespace) -> int:
    import faulthandler

    # A fatal signal (SIGSEGV, SIGABRT, SIGBUS...) prints every thread's Python stack to stderr ("Fatal Python
    # error: Segmentation fault") before the process dies of it. librdkafka's threads block all signals: a
    # segfault in one of them kills the process at once, with no stack, and only the exit code (-11) says so.
    faulthandler.enable(all_threads=True)
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(Path(args.kubeconfig).resolve())
    import kopf

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
    import kappa.controllers  # noqa: F401  (registers the handlers)

    # Kopf's loggers name the resource in every line: [namespace/name] in plain text, "object" in JSON.
    kopf.configure(
        verbose=args.verbose,
        log_format={"json": kopf.LogFormat.JSON, "full": kopf.LogFormat.FULL}[args.log_format],
        log_refkey="object",
        log_prefix=args.log_format == "full",
    )
    _quiet_client_libraries(verbose=args.verbose)

    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.health_host)
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
    if verbose:  # librdkafka logs to stderr itself, from CRITICAL up unless asked (adapters/kafka.py)
        os.environ.setdefault("KAPPA_LIBRDKAFKA_LOG_LEVEL", "6")
    # Quiet when healthy: Kopf logs every handler and timer run at INFO ("Timer 'poll_streamjob' succeeded.",
    # six lines a minute per resource), and aiohttp every /healthz probe; the operator's own lines (one per
    # state change) and Kopf's warnings and errors stay.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # httpx logs every request at INFO: the session runtime polls Flink's REST API on every look.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.INFO if verbose else logging.WARNING)


def _cmd_crds(args: argparse.Namespace) -> int:
    from kappa.api.crd import CRD_DIRS, all_crds

    stale = []
    for out in map(Path, args.out or CRD_DIRS):
        if not args.check:
            out.mkdir(parents=True, exist_ok=True)
        for name, crd in all_crds().items():
            text = render_yaml(crd)
            path = out / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                path.write_text(text)
                print(f"wrote {path}")
    if stale:
        print("CRDs differ from the models; run `make crds`: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


def _cluster(args: argparse.Namespace) -> Any:
    from kappa.cli.kube import connect

    return connect(
        args.kubeconfig or args.g_kubeconfig,
        args.context or args.g_context,
        args.namespace or args.g_namespace,
    )


def _cmd_status(args: argparse.Namespace) -> int:
    from kappa.cli import status

    cluster = _cluster(args)
    if args.watch:
        if not args.name:
            print("kappa status --watch: name one resource", file=sys.stderr)
            return 2
        return status.watch(
            cluster, args.kind, args.name, until=args.until, timeout=args.timeout, interval=args.interval
        )
    return status.show(cluster, args.kind, args.name)


def _cmd_replay(args: argparse.Namespace) -> int:
    from kappa.cli import replay, status

    run = replay.build(
        args.job,
        args.version,
        args.from_,
        until=args.until,
        name=args.name,
        approval=args.approval,
        throttle=args.throttle,
        rollback_window=args.rollback_window,
        spec_file=args.spec_file,
    )
    if args.dry_run:
        return replay.dry_run(run)
    cluster = _cluster(args)
    if args.plan:
        return replay.run_plan(cluster, run, args.bootstrap_servers)
    code = replay.create(cluster, run)
    if args.watch and code == 0:
        return status.watch(cluster, "rr", run["metadata"]["name"], until=args.watch_until)
    return code


def _cmd_request(args: argparse.Namespace) -> int:
    """approve / abort / rollback: set the request annotation with a new id, and wait (unless --no-wait) until
    the operator echoes it in status.handledRequests."""
    from kappa.cli.requests import request

    kind = getattr(args, "kind", "rr")
    return request(
        _cluster(args),
        args.command,
        kind,
        args.name,
        request_id=args.id,
        timeout=args.timeout,
        wait=not args.no_wait,
    )


def render_yaml(obj: object) -> str:
    header = "# Generated from operator/kappa/api by `kappa crds`. Do not edit.\n"
    return header + yaml.safe_dump(obj, sort_keys=False, width=110)


def _cluster_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    cmd.add_argument("--context", help="kubeconfig context (default: the current one)")
    cmd.add_argument("-n", "--namespace", help="default: the context's namespace")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kappa", description=__doc__)
    parser.add_argument(
        "--kubeconfig", dest="g_kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG)"
    )
    parser.add_argument(
        "--context", dest="g_context", metavar="NAME", help="kubeconfig context (default: the current one)"
    )
    parser.add_argument(
        "-n", "--namespace", dest="g_namespace", metavar="NAMESPACE", help="default: the context's namespace"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current (or given) kubeconfig")
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

    for verb, help_text in (
        ("approve", "approve a ReplayRun waiting in AwaitingApproval (or ahead of it)"),
        ("abort", "abort a ReplayRun before its cutover: what it created is removed"),
        ("rollback", "roll a ReplayRun (rr) or StreamJob (sj) back within its rollback window"),
    ):
        cmd = sub.add_parser(
            verb,
            help=help_text,
            description=f"{help_text}. Waits until the operator echoes the request in "
            "status.handledRequests. "
            "Exit codes: 0 handled and acted on, 6 not echoed within --timeout, 7 echoed but refused "
            "(e.g. an abort after the cutover), 1 error.",
        )
        if verb == "rollback":
            cmd.add_argument("kind", metavar="KIND", help="rr or sj")
        cmd.add_argument("name", metavar="NAME")
        _cluster_flags(cmd)
        cmd.add_argument("--id", help="request id to echo in status (default: a timestamp)")
        cmd.add_argument(
            "--timeout", type=float, default=60, help="seconds to wait for the echo (default 60)"
        )
        cmd.add_argument("--no-wait", action="store_true", help="set the annotation and exit")
        cmd.set_defaults(func=_cmd_request)

    for verb in ("status", "get"):
        cmd = sub.add_parser(
            verb,
            help="show a StreamJob, ReplayRun or MaterializedView"
            + (" (alias of status)" if verb == "get" else ""),
            description="Show what a kappa resource is doing: phase, progress, lag, gates and validation, "
            "conditions and its last events. --watch follows it; on a ReplayRun it exits 0 when the run "
            "succeeds, 3 when it fails, 4 when aborted, 5 when rolled back, 6 at --timeout (docs/cli.md).",
        )
        cmd.add_argument("kind", metavar="KIND", help="streamjob|sj, replayrun|rr, materializedview|mv")
        cmd.add_argument(
            "name", metavar="NAME", nargs="?", help="one resource (default: all in the namespace)"
        )
        _cluster_flags(cmd)
        cmd.add_argument("-w", "--watch", action="store_true", help="follow it live")
        cmd.add_argument(
            "--until",
            choices=["succeeded", "cutover"],
            default="succeeded",
            help="a watched ReplayRun ends the watch when it succeeds (after its rollback window), or "
            "already at its cutover (exit 0 in Observing)",
        )
        cmd.add_argument("--timeout", type=float, help="stop watching after this many seconds (exit 6)")
        cmd.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default 1)")
        cmd.set_defaults(func=_cmd_status)

    rep = sub.add_parser(
        "replay",
        help="create a ReplayRun of a StreamJob (--plan: what preflight would say; --dry-run: the YAML)",
        description="Replay a StreamJob's input log through a new version: creates a ReplayRun. "
        "--plan asks Kafka what the operator's preflight would find and creates nothing (exit 0: it would "
        "pass, 3: it would fail).",
    )
    rep.add_argument("job", metavar="JOB", help="the StreamJob")
    rep.add_argument("--version", required=True, help="the new version (spec.version)")
    rep.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar="earliest|RFC3339|TOPIC:PARTITION=OFFSET,...",
        help="where the replay starts: the start of the retained log, a time (2026-11-28T12:00:00Z), or "
        "explicit offsets of every source partition (clicks:0=120,clicks:1=80)",
    )
    rep.add_argument(
        "--until",
        default="live",
        metavar="live|RFC3339|TOPIC:PARTITION=OFFSET,...",
        help="live (default): catch up and cut over; a time or offsets: a bounded backfill, no cutover",
    )
    rep.add_argument("--name", help="the ReplayRun's name (default JOB-VERSION)")
    rep.add_argument("--approval", choices=["Manual", "Automatic"], help="default Manual")
    rep.add_argument(
        "--throttle", type=int, metavar="RECORDS_PER_SECOND", help="spec.throttle.recordsPerSecond"
    )
    rep.add_argument("--rollback-window", metavar="DURATION", help="e.g. 30m (default), 0s")
    rep.add_argument(
        "-f", "--spec-file", help="YAML with more spec fields (overrides, catchUp, validation...), merged in"
    )
    rep.add_argument("--dry-run", action="store_true", help="print the ReplayRun as YAML, create nothing")
    rep.add_argument("--plan", action="store_true", help="print what preflight would say, create nothing")
    rep.add_argument(
        "--bootstrap-servers", help="for --plan: reach Kafka here (default: the StreamJob's source.kafka)"
    )
    rep.add_argument(
        "-w", "--watch", action="store_true", help="after creating it, watch it (as status --watch)"
    )
    rep.add_argument("--watch-until", choices=["succeeded", "cutover"], default="succeeded")
    _cluster_flags(rep)
    rep.set_defaults(func=_cmd_replay)

    crds = sub.add_parser(
        "crds",
        help="generate the CRDs from the models: by default into the kustomize base (manifests/crds) and the "
        "Helm chart (charts/kappa-operator/crds), relative to the current directory",
    )
    crds.add_argument(
        "--out", action="append", metavar="DIR", help="write (or --check) here instead; repeatable"
    )
    crds.add_argument("--check", action="store_true", help="fail if the files differ from the models")
    crds.set_defaults(func=_cmd_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run" and args.g_kubeconfig and not args.kubeconfig:
        args.kubeconfig = args.g_kubeconfig
    from kappa.cli.kube import CliError

    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"kubectl kappa {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
