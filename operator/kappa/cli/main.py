"""The `kappa` command (also installed as `kubectl-kappa`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kappa.cli.crds import crds_arguments
from kappa.cli.run import run_arguments


def _cluster(args: argparse.Namespace) -> Any:
    from kappa.adapters.cli_cluster import connect

    return connect(
        args.kubeconfig or args.g_kubeconfig,
        args.context or args.g_context,
        args.namespace or args.g_namespace,
    )


def _cmd_status(args: argparse.Namespace) -> int:
    from kappa.cli import status, watch

    cluster = _cluster(args)
    if args.watch:
        if not args.name:
            print("kappa status --watch: name one resource", file=sys.stderr)
            return 2
        return watch.watch(
            cluster, args.kind, args.name, until=args.until, timeout=args.timeout, interval=args.interval
        )
    return status.show(cluster, args.kind, args.name)


def _cmd_replay(args: argparse.Namespace) -> int:
    from kappa.cli import replay, watch

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
        return watch.watch(cluster, "rr", run["metadata"]["name"], until=args.watch_until)
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
    run_arguments(sub.add_parser("run", help="run the operator against the current (or given) kubeconfig"))

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

    crds_arguments(
        sub.add_parser(
            "crds",
            help="generate the CRDs from the models: by default into the kustomize base (manifests/crds) and "
            "the Helm chart (charts/kappa-operator/crds), relative to the current directory",
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run" and args.g_kubeconfig and not args.kubeconfig:
        args.kubeconfig = args.g_kubeconfig
    from kappa.adapters.cli_cluster import CliError

    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"kubectl kappa {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
