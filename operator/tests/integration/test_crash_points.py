"""Crash injection at every transition: for each failpoint (kappa/controllers/failpoints.py) a story runs with
the operator armed to die there, as under SIGKILL (exit 86, no cleanup); it is started again without the
failpoint and the story goes on to its end. The end state must equal that of the same story run without a
crash: conditions, versions, children (each exactly once, never recreated: their uids are followed by a
watch), the view's target, savepoints, consumer groups and outputs.

Stories: a savepoint upgrade, an automatic rollback, suspend and resume, deletion with a final savepoint
(StreamJob, FKO and Strimzi doubles); a canary promotion (real Kafka); a ReplayRun and a MaterializedView
pin (the shop: real Kafka and PostgreSQL, the pipeline double).

CI runs the four points marked `ci`, each with its story's uninterrupted run: about 8 min on 2 cores with a
load average of 50 (a story's run took 30-110 s there, a restart of the operator up to 30 s of it).
KAPPA_CRASH_ALL=1 runs all 37 (about 60 min there). The table of points goes to the terminal at the end of the
module, and to the file KAPPA_CRASH_TABLE names.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kubernetes import client

from kappa.controllers.failpoints import EXIT_CODE as FAILPOINT_EXIT
from tests.doubles.fko import FLINK_DEPLOYMENTS, FakeFlinkOperator
from tests.doubles.kube_watch import Obj, Resource, ResourceWatcher, api_client
from tests.doubles.pipeline import FakePipeline
from tests.doubles.strimzi import KAFKA_TOPICS, FakeTopicOperator
from tests.integration.shop import Shop, replayrun, streamjob, view
from tests.integration.testbed import KafkaTestbed, Kubectl, OperatorProcess, conditions

KAPPA = "kappa.dev/v1alpha1"
REPLAY_RUNS = Resource("kappa.dev", "v1alpha1", "replayruns", "ReplayRun")
SNAPSHOTS = Resource("flink.apache.org", "v1beta1", "flinkstatesnapshots", "FlinkStateSnapshot")
CHILDREN = (FLINK_DEPLOYMENTS, KAFKA_TOPICS, REPLAY_RUNS, SNAPSHOTS)


# --- what happens to children, whoever makes them ---------------------------------------------------------


class Ledger:
    """Every uid each child ever had, and every deletion, from watches (a poll could miss a quick
    delete-and-create)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.lock = threading.Lock()
        self.uids: dict[tuple[str, str, str], set[str]] = {}
        self.deleted: dict[tuple[str, str, str], int] = {}
        self.watchers = [
            ResourceWatcher(kubeconfig, r, on_change=self._note(r.kind), name=f"ledger-{r.plural}")
            for r in CHILDREN
        ]

    def _note(self, kind: str) -> Callable[[str, Obj], None]:
        def note(change: str, obj: Obj) -> None:
            meta = obj["metadata"]
            key = (meta["namespace"], kind, meta["name"])
            with self.lock:
                self.uids.setdefault(key, set()).add(meta["uid"])
                if change == "DELETED":
                    self.deleted[key] = self.deleted.get(key, 0) + 1

        return note

    def of(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """Per `Kind/name` in the namespace: how many uids it had, and how many times it was deleted."""
        with self.lock:
            uids = {f"{k}/{n}": len(u) for (ns, k, n), u in self.uids.items() if ns == namespace}
            gone = {f"{k}/{n}": c for (ns, k, n), c in self.deleted.items() if ns == namespace}
        return uids, gone


@pytest.fixture(scope="module")
def ledger(control_plane: Path, upstream_crds: object, crds: list[str]) -> Iterator[Ledger]:
    found = Ledger(control_plane)
    for w in found.watchers:
        w.start()
    yield found
    for w in found.watchers:
        w.stop()


# --- one story's run ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """A story in a namespace of its own; `point` armed on the operator once the story's setup is done."""

    point: str | None
    admin: Kubectl
    kubectl: Kubectl
    operator: OperatorProcess
    fko: FakeFlinkOperator
    kafka: KafkaTestbed
    postgres_uri: str
    custom: client.CustomObjectsApi
    armed_file: Path
    shop: Shop | None = None
    crashes: list[float] = field(default_factory=list)
    armed: bool = False
    started: float = 0.0

    @property
    def ns(self) -> str:
        return str(self.kubectl.namespace)

    def arm(self) -> None:
        """The story's setup is over: arm the running operator's failpoint (none for the reference)."""
        self.started = time.monotonic()
        if self.point is not None:
            self.armed_file.write_text(f"{self.point}@{self.ns}")
            self.armed = True

    def check_operator(self) -> None:
        code = self.operator.exited()
        if code is None:
            return
        assert code == FAILPOINT_EXIT, f"the operator died otherwise ({code}); see {self.operator.log_path}"
        self.crashes.append(time.monotonic() - self.started)
        self.disarm()
        self.operator.start(env={"KAPPA_FAILPOINTS_FILE": str(self.armed_file)})  # as a Deployment would

    def disarm(self) -> None:
        self.armed_file.write_text("")
        self.armed = False

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = 60, tick: Any = None) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self.check_operator()
            found = predicate()
            if found:
                return found
            assert time.monotonic() < deadline, f"{self.ns}: timed out after {timeout}s waiting for {what}"
            if tick is not None:
                tick()
            time.sleep(0.3)

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            got: dict[str, Any] = self.custom.get_namespaced_custom_object(
                "kappa.dev", "v1alpha1", self.ns, plural, name
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return got

    def items(self, r: Resource) -> list[dict[str, Any]]:
        listed: Any = self.custom.list_namespaced_custom_object(r.group, r.version, self.ns, r.plural)
        return list(listed["items"])

    def fds(self) -> dict[str, dict[str, Any]]:
        return {fd["metadata"]["name"]: fd for fd in self.items(FLINK_DEPLOYMENTS)}


def ready(obj: dict[str, Any] | None) -> bool:
    if obj is None:
        return False
    cond = conditions(obj).get("Ready", {})
    return cond.get("status") == "True" and cond.get("observedGeneration") == obj["metadata"]["generation"]


def sj_status(run: Run, name: str) -> dict[str, Any]:
    return (run.get("streamjobs", name) or {}).get("status") or {}


# --- the stories -------------------------------------------------------------------------------------------


def plain_job(version: str, **upgrade: Any) -> dict[str, Any]:
    """The StreamJob of test_streamjob.py, with short windows: FKO and Strimzi played by the doubles."""
    return {
        "apiVersion": KAPPA,
        "kind": "StreamJob",
        "metadata": {"name": "sessionizer"},
        "spec": {
            "version": version,
            "source": {"kafka": {"clusterRef": "events"}, "topics": ["clicks"]},
            "output": {"topic": {"base": "sessions", "partitions": 1}},
            "flink": {
                "image": "kappa-dev/flink-sql-runner:1.20",
                "flinkVersion": "v1_20",
                "sql": ["INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks /* ${KAPPA_GROUP_ID} */"],
            },
            "upgrade": {
                # Long enough for an operator restart on a loaded machine (up to 20 s seen on 2 cores).
                "readinessTimeout": "60s",
                "savepointTimeout": "60s",
                "maxRestarts": 2,
                "stableFor": "2s",
                "rollbackWindow": "4s",
                **upgrade,
            },
        },
    }


def live_v1(run: Run) -> None:
    run.kubectl.apply(plain_job("v1"))
    run.wait("v1 Ready", lambda: ready(run.get("streamjobs", "sessionizer")))


def settled_upgrade(run: Run) -> bool:
    st = sj_status(run, "sessionizer")
    return (
        ready(run.get("streamjobs", "sessionizer"))
        and st.get("activeVersion") == "v2"
        and (st.get("upgrade") or {}).get("step") == "Idle"
        and sorted(run.fds()) == ["sessionizer-v2"]
    )


def story_upgrade(run: Run) -> None:
    """v1 → v2 by a savepoint; v1 kept suspended for the rollback window, then removed."""
    live_v1(run)
    run.arm()
    run.kubectl.apply(plain_job("v2"))
    run.wait("v2 live and v1 retired", lambda: settled_upgrade(run), timeout=90)


def story_rollback(run: Run) -> None:
    """v2 crash-loops: it is removed, and v1 resumes from its savepoint."""
    live_v1(run)
    run.fko.crash_loop("sessionizer-v2", namespace=run.ns, every=0.5, restart_delay=0.2)
    run.arm()
    run.kubectl.apply(plain_job("v2"))

    def rolled_back() -> bool:
        obj = run.get("streamjobs", "sessionizer")
        st = (obj or {}).get("status") or {}
        return (
            obj is not None
            and conditions(obj).get("RolledBack", {}).get("status") == "True"
            and st.get("activeVersion") == "v1"
            and sorted(run.fds()) == ["sessionizer-v1"]
            and run.fko.state(run.ns, "sessionizer-v1") == "RUNNING"
        )

    run.wait("rolled back to v1", rolled_back, timeout=90)


def story_suspend(run: Run) -> None:
    """spec.suspend stops v1 with a savepoint; clearing it resumes v1 from that savepoint."""
    live_v1(run)
    run.arm()
    patch = ["patch", "sj", "sessionizer", "--type=merge", "-p"]
    run.kubectl(*patch, '{"spec":{"suspend":true}}')
    run.wait(
        "Suspended",
        lambda: (
            ready(run.get("streamjobs", "sessionizer"))
            and sj_status(run, "sessionizer").get("phase") == "Suspended"
        ),
    )
    run.kubectl(*patch, '{"spec":{"suspend":false}}')
    run.wait(
        "running again",
        lambda: (
            ready(run.get("streamjobs", "sessionizer"))
            and sj_status(run, "sessionizer").get("phase") == "Running"
            and run.fko.state(run.ns, "sessionizer-v1") == "RUNNING"
        ),
    )


def story_deletion(run: Run) -> None:
    """Deleting the StreamJob takes a final savepoint, records it as a FlinkStateSnapshot, and the
    deployments go with their owner; the output topic stays (deletionPolicy Retain)."""
    live_v1(run)
    run.arm()
    run.kubectl("delete", "sj", "sessionizer", "--wait=false")
    run.wait(
        "the StreamJob and its deployments gone",
        lambda: run.get("streamjobs", "sessionizer") is None and not run.fds(),
        timeout=90,
    )


def canary_job(version: str, run: Run, source: str, base: str) -> dict[str, Any]:
    return {
        "apiVersion": KAPPA,
        "kind": "StreamJob",
        "metadata": {"name": "enricher"},
        "spec": {
            "version": version,
            "source": {"kafka": {"bootstrapServers": run.kafka.bootstrap}, "topics": [source]},
            "output": {"topic": {"base": base}},
            "flink": {"image": "img", "flinkVersion": "v1_20", "jarURI": "local:///job.jar"},
            "upgrade": {
                "strategy": "canary",
                "readinessTimeout": "60s",  # outlasts an operator restart, as in plain_job
                "stableFor": "2s",
                "rollbackWindow": "4s",
                "canary": {
                    "duration": "6s",
                    "maxRestarts": 0,
                    "maxLagRecords": 1000000,
                    "outputRateRatio": {"min": 0.5, "max": 2.0},
                    "noData": "Fail",
                },
            },
        },
    }


def story_canary(run: Run) -> None:
    """v2 runs beside v1 as a canary, passes its analysis (the test writes both versions' output at the
    same rate), and is promoted by a savepoint upgrade."""
    source = run.kafka.topic(partitions=1)
    base = f"out-{uuid.uuid4().hex[:6]}"
    for topic in (f"{base}.v1", f"{base}.v2-canary"):
        run.kafka.run(run.kafka.admin.ensure_topic(topic, partitions=1))
    run.kubectl.apply(canary_job("v1", run, source, base))
    run.wait("v1 Ready", lambda: ready(run.get("streamjobs", "enricher")))
    run.arm()
    run.kubectl.apply(canary_job("v2", run, source, base))

    def traffic() -> None:  # input, and both versions' output, while the canary is analysed
        if (sj_status(run, "enricher").get("canary") or {}).get("step") == "Analysing":
            now = int(time.time() * 1000)
            for topic in (source, f"{base}.v1", f"{base}.v2-canary"):
                run.kafka.produce(topic, [(0, now)] * 20)

    def promoted() -> bool:
        st = sj_status(run, "enricher")
        return (
            ready(run.get("streamjobs", "enricher"))
            and st.get("activeVersion") == "v2"
            and (st.get("upgrade") or {}).get("step") == "Idle"
            and sorted(run.fds()) == ["enricher-v2"]
        )

    run.wait("v2 promoted and v1 retired", promoted, timeout=120, tick=traffic)


def make_shop(run: Run, pipeline: FakePipeline) -> Shop:
    """The shop of shop.py in this run's namespace: v1 (which doubles revenue) serves the `sessions` view."""
    schema = f"s_{uuid.uuid4().hex[:8]}"
    topic = run.kafka.topic(partitions=3)
    with psycopg.connect(run.postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    shop = Shop(run.kubectl, run.kafka.bootstrap, run.postgres_uri, topic, schema)
    run.shop = shop
    shop.produce(300)
    pipeline.logic(run.ns, "v1", multiplier=2.0)
    secret = base64.b64encode(run.postgres_uri.encode()).decode()
    run.kubectl.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "serving-db"}, "data": {"uri": secret}}
    )
    run.kubectl.apply(streamjob(shop))
    run.kubectl.apply(view(shop))
    run.wait(
        "the view serving v1's numbers",
        lambda: shop.view_table() == "sessions_v1" and shop.read_view() == ({"v1"}, shop.truth(2)),
        timeout=90,
    )
    return shop


def story_replay(run: Run, pipeline: FakePipeline) -> None:
    """The fixed v2 replays the log, catches up, validates, the view switches to it, and v1 is
    decommissioned after the rollback window."""
    shop = make_shop(run, pipeline)
    run.arm()
    # The window outlasts an operator restart on a loaded machine (20 s seen): with a shorter one, v1 may be
    # decommissioned before the restarted operator suspends it, and the end states differ by its savepoint.
    run.kubectl.apply(replayrun("fix-revenue", rollbackWindow="30s"))

    def done() -> bool:
        st = (run.get("replayruns", "fix-revenue") or {}).get("status") or {}
        return (
            st.get("phase") == "Succeeded"
            and st.get("cleanup") == "Done"
            and sj_status(run, "sessionizer").get("activeVersion") == "v2"
            and sorted(run.fds()) == ["sessionizer-v2"]
            and shop.read_view() == ({"v2"}, shop.truth())
        )

    run.wait("the run Succeeded and cleaned up", done, timeout=180)


def story_view_pin(run: Run, pipeline: FakePipeline) -> None:
    """A GitOps pin (spec.activeVersion) moves the view to another version's table by compare-and-swap."""
    shop = make_shop(run, pipeline)
    with psycopg.connect(run.postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {shop.schema}.sessions_v2 (LIKE {shop.schema}.sessions_v1 INCLUDING ALL)")
        conn.execute(f"INSERT INTO {shop.schema}.sessions_v2 SELECT * FROM {shop.schema}.sessions_v1")
    run.arm()
    run.kubectl("patch", "mv", "sessions", "--type=merge", "-p", '{"spec":{"activeVersion":"v2"}}')

    def pinned() -> bool:
        mv = run.get("materializedviews", "sessions")
        st = (mv or {}).get("status") or {}
        return (
            ready(mv)
            and (st.get("activeVersion"), st.get("previousVersion")) == ("v2", "v1")
            and shop.view_table() == "sessions_v2"
        )

    run.wait("the view pinned to v2", pinned)


# --- the points --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    story: str
    name: str
    where: str
    ci: bool = False


POINTS = [
    Point("upgrade", "streamjob:UpgradeStarted", "Savepointing recorded, v1 not yet suspended"),
    Point("upgrade", "streamjob:UpgradeStarted:1", "v1 asked to suspend, status not updated"),
    Point("upgrade", "streamjob:SavepointTaken", "Starting recorded with the savepoint, v2 not applied"),
    Point("upgrade", "streamjob:SavepointTaken:1", "v2 applied from the savepoint", ci=True),
    Point("upgrade", "streamjob:UpgradeSucceeded", "v2 recorded active, v1 previous"),
    Point("upgrade", "streamjob:Retire", "v1's window over, not yet deleted"),
    Point("upgrade", "streamjob:Retire:1", "v1 deleted, status still lists it"),
    Point("rollback", "streamjob:RollingBack", "RollingBack recorded, v2 still there"),
    Point("rollback", "streamjob:RollingBack:1", "v2 deleted, v1 not yet resumed"),
    Point("rollback", "streamjob:RollingBack:2", "v1 resuming from its savepoint"),
    Point("rollback", "streamjob:RolledBack", "RolledBack recorded"),
    Point("suspend", "streamjob:Suspending", "suspension recorded, v1 still running"),
    Point("suspend", "streamjob:Suspending:1", "v1 asked to suspend"),
    Point("suspend", "streamjob:Resuming", "resume recorded, v1 still suspended"),
    Point("suspend", "streamjob:Resuming:1", "v1 asked to run"),
    Point("deletion", "streamjob:Finalizing", "deletion seen, no savepoint asked"),
    Point("deletion", "streamjob:Finalizing:1", "v1 asked for its final savepoint"),
    Point("deletion", "streamjob:FinalSavepoint", "final savepoint in status, no FlinkStateSnapshot"),
    Point("deletion", "streamjob:FinalSavepoint:1", "FlinkStateSnapshot made, finalizer still there"),
    Point("canary", "streamjob:CanaryStarted", "canary recorded, not deployed"),
    Point("canary", "streamjob:CanaryStarted:1", "canary deployed"),
    Point("canary", "streamjob:CanaryPromoted", "promotion recorded, canary still there", ci=True),
    Point("canary", "streamjob:CanaryPromoted:1", "canary removed, v1 not yet suspended"),
    Point("canary", "streamjob:CanaryPromoted:2", "v1 asked to suspend for the promotion"),
    Point("replay", "replayrun:Preflight", "Preflight recorded, nothing checked"),
    Point("replay", "replayrun:Replaying", "Replaying recorded: no group, table or deployment yet"),
    Point("replay", "replayrun:Replaying:1", "group seeded, table and deployment made"),
    Point("replay", "replayrun:CatchingUp", "CatchingUp recorded"),
    Point("replay", "replayrun:Validating", "Validating recorded"),
    Point("replay", "replayrun:CuttingOver", "cutover recorded, view not switched", ci=True),
    Point("replay", "replayrun:CuttingOver:1", "view switched, Observing not recorded"),
    Point("replay", "replayrun:Observing", "Observing recorded, v2 not promoted"),
    Point("replay", "replayrun:Observing:1", "v2 promoted (quota lifted)"),
    Point("replay", "replayrun:Succeeded", "Succeeded recorded, v1 not decommissioned"),
    Point("replay", "replayrun:Succeeded:1", "v1 decommissioned, cleanup not recorded"),
    Point("view", "view:Switch", "pin decided, view not switched"),
    Point("view", "view:Switch:1", "view switched, status not written", ci=True),
]
ALL = os.environ.get("KAPPA_CRASH_ALL") == "1"
SELECTED = [p for p in POINTS if ALL or p.ci]


# --- the end state, and what must not happen on the way ---------------------------------------------------


def _conditions(obj: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    return {t: (c["status"], c.get("reason", "")) for t, c in conditions(obj or {}).items()}


def snapshot(run: Run, ledger: Ledger) -> dict[str, Any]:
    """The end state, with names that differ between namespaces (uids, paths, times) left out."""
    ns = run.ns
    end: dict[str, Any] = {}
    for plural in ("streamjobs", "replayruns", "materializedviews"):
        listed: Any = run.custom.list_namespaced_custom_object("kappa.dev", "v1alpha1", ns, plural)
        for obj in listed["items"]:
            st = obj.get("status") or {}
            key = f"{obj['kind']}/{obj['metadata']['name']}"
            end[key] = {"conditions": _conditions(obj)}
            if plural == "streamjobs":
                end[key] |= {
                    "phase": st.get("phase"),
                    "activeVersion": st.get("activeVersion"),
                    "upgrade": {
                        k: (st.get("upgrade") or {}).get(k) for k in ("step", "toVersion", "failedVersion")
                    },
                    "canary": {k: (st.get("canary") or {}).get(k) for k in ("step", "version", "result")},
                    "savepoints": [(s["version"], s["reason"]) for s in st.get("savepoints") or []],
                    "history": [(h["version"], h["outcome"]) for h in st.get("history") or []],
                    "deployments": sorted((d["version"], d["role"]) for d in st.get("deployments") or []),
                    "outputVersions": st.get("outputVersions"),
                }
            elif plural == "replayruns":
                cut = st.get("cutover") or {}
                end[key] |= {
                    "phase": st.get("phase"),
                    "reason": st.get("reason"),
                    "cleanup": st.get("cleanup"),
                    "transitions": [t["phase"] for t in st.get("transitions") or []],
                    "cutover": [cut.get(k) for k in ("fromVersion", "toVersion", "replacedVersion")],
                }
            else:
                end[key] |= {
                    "activeVersion": st.get("activeVersion"),
                    "previousVersion": st.get("previousVersion"),
                    "versions": [(v["name"], v["state"]) for v in st.get("versions") or []],
                }
    fds = run.fds()
    end["children"] = {
        **{
            f"FlinkDeployment/{n}": [
                fd["metadata"]["labels"].get("kappa.dev/role"),
                fd["spec"]["job"].get("state"),
                run.fko.state(ns, n),
            ]
            for n, fd in fds.items()
        },
        **{
            f"KafkaTopic/{t['metadata']['name']}": t["spec"].get("topicName") for t in run.items(KAFKA_TOPICS)
        },
        **{f"FlinkStateSnapshot/{s['metadata']['name']}": "snapshot" for s in run.items(SNAPSHOTS)},
    }
    # Savepoints FKO took, and the runs of each deployment with where they started (by savepoint number).
    taken = {n: run.fko.savepoints(ns, n) for n in ("sessionizer-v1", "enricher-v1", "sessionizer-v2")}
    numbered = {p: f"{n}#{i}" for n, paths in taken.items() for i, p in enumerate(paths)}
    end["savepoints taken"] = {n: len(p) for n, p in taken.items() if p}
    end["runs"] = {
        n: [numbered.get(r or "", "no state" if r is None else "other") for r in run.fko.runs(ns, n)]
        for n in ("sessionizer-v1", "sessionizer-v2", "enricher-v1", "enricher-v2", "enricher-v2-canary")
        if run.fko.runs(ns, n)
    }
    prefix = f"{ns}."
    groups = run.shop.groups() if run.shop else _groups(run.kafka.bootstrap)
    end["consumer groups"] = sorted(g[len(prefix) :] for g in groups if g.startswith(prefix))
    if run.shop:
        shop = run.shop
        end["alias target"] = shop.view_table()
        versions, rows = shop.read_view()
        end["view rows"] = {"versions": sorted(versions), "users": len(rows), "truth": _truth_of(shop, rows)}
        with psycopg.connect(run.postgres_uri, autocommit=True) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE' ORDER BY table_name",
                (shop.schema,),
            ).fetchall()
            end["output tables"] = {
                t: conn.execute(f"SELECT count(*) FROM {shop.schema}.{t}").fetchone()[0]  # type: ignore[index]
                for (t,) in tables
            }
    return end


def _truth_of(shop: Shop, rows: dict[str, tuple[int, int]]) -> str:
    return "fixed" if rows == shop.truth() else "inflated" if rows == shop.truth(2) else "neither"


def _groups(bootstrap: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    listed = AdminClient({"bootstrap.servers": bootstrap}).list_consumer_groups(request_timeout=10).result()
    return {g.group_id for g in listed.valid}


@dataclass
class Faults:
    duplicates: list[str]
    lost_savepoints: list[str]
    deleted_outputs: list[str]


def faults(run: Run, ledger: Ledger, end: dict[str, Any]) -> Faults:
    """What must never happen, crash or no crash: a child made twice (two uids for one name, or two
    deployments of one version and role), a savepoint FKO took that no record keeps, an active output
    deleted."""
    uids, deleted = ledger.of(run.ns)
    duplicates = [f"{k} ({n} uids)" for k, n in uids.items() if n > 1]
    roles: dict[tuple[str, str], list[str]] = {}
    for name, fd in run.fds().items():
        labels = fd["metadata"]["labels"]
        roles.setdefault((labels.get("kappa.dev/version"), labels.get("kappa.dev/role")), []).append(name)
    duplicates += [f"{v}/{r}: {names}" for (v, r), names in roles.items() if len(names) > 1]
    recorded: set[str] = set()
    for obj in run.items(Resource("kappa.dev", "v1alpha1", "streamjobs", "StreamJob")):
        recorded |= {s["path"] for s in (obj.get("status") or {}).get("savepoints") or []}
    recorded |= {s["spec"]["savepoint"]["path"] for s in run.items(SNAPSHOTS)}
    for obj in run.items(REPLAY_RUNS):  # a replay's cutover suspends v1 and keeps its savepoint there
        recorded.add(((obj.get("status") or {}).get("cutover") or {}).get("previousSavepoint") or "")
    lost = []
    for name in ("sessionizer-v1", "enricher-v1"):
        # v1's savepoints are the ones an upgrade, a suspension or a deletion relies on.
        lost += [f"{name}: {p}" for p in run.fko.savepoints(run.ns, name) if p not in recorded]
    outputs = []
    for key, st in end.items():
        if key.startswith("StreamJob/") and st.get("activeVersion"):
            version = (st.get("outputVersions") or {}).get(st["activeVersion"], st["activeVersion"])
            outputs += [k for k in deleted if k.startswith("KafkaTopic/") and k.endswith(f"-{version}")]
    if run.shop:
        target = run.shop.view_table()
        if target is None or not run.shop.table_exists(target):
            outputs.append(f"table {target}")
    return Faults(duplicates, lost, outputs)


# --- running the matrix ------------------------------------------------------------------------------------


STORIES: dict[str, Callable[..., None]] = {
    "upgrade": story_upgrade,
    "rollback": story_rollback,
    "suspend": story_suspend,
    "deletion": story_deletion,
    "canary": story_canary,
    "replay": story_replay,
    "view": story_view_pin,
}
SHOP_STORIES = {"replay", "view"}


@dataclass
class Row:
    point: Point
    crashed_at: float | None
    converged: bool
    faults: Faults
    seconds: float


class Matrix:
    def __init__(self) -> None:
        self.references: dict[str, tuple[dict[str, Any], Faults]] = {}
        self.rows: list[Row] = []

    def table(self) -> str:
        lines = [
            "| # | point | story | where it dies | crashed after | converged | duplicate children "
            "| lost savepoints | active outputs deleted | run |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(self.rows, 1):
            f = r.faults
            lines.append(
                f"| {i} | `{r.point.name}` | {r.point.story} | {r.point.where} | "
                f"{f'{r.crashed_at:.1f} s' if r.crashed_at is not None else 'not reached'} | "
                f"{'yes' if r.converged else 'NO'} | {len(f.duplicates)} | {len(f.lost_savepoints)} | "
                f"{len(f.deleted_outputs)} | {r.seconds:.0f} s |"
            )
        ok = sum(r.converged and r.crashed_at is not None for r in self.rows)
        lines.append(
            f"\n{ok} of {len(self.rows)} points crashed and converged to the uninterrupted end state"
        )
        return "\n".join(lines)


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest) -> Iterator[Matrix]:
    found = Matrix()
    yield found
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if found.rows and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n\n" + found.table())
    out = os.environ.get("KAPPA_CRASH_TABLE")
    if out and found.rows:
        Path(out).write_text(found.table() + "\n")


@pytest.fixture(scope="module")
def armable_operator(
    kappa_operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[OperatorProcess, Path]]:
    """The session's operator, restarted once to read its failpoints from a file the tests write."""
    armed = tmp_path_factory.mktemp("failpoints") / "armed"
    armed.write_text("")
    kappa_operator.stop()
    kappa_operator.start(env={"KAPPA_FAILPOINTS_FILE": str(armed)})
    yield kappa_operator, armed
    armed.write_text("")
    kappa_operator.stop()
    kappa_operator.start()


@pytest.fixture
def new_run(
    admin: Kubectl,
    crds: list[str],
    armable_operator: tuple[OperatorProcess, Path],
    fake_fko: FakeFlinkOperator,
    fake_strimzi: FakeTopicOperator,
    fake_pipeline: FakePipeline,
    kafka: KafkaTestbed,
    postgres_uri: str,
    control_plane: Path,
) -> Iterator[Callable[[str | None], Run]]:
    """Runs in namespaces of their own, cleaned up afterwards (the jobs stop before their schema goes)."""
    made: list[Run] = []
    custom = client.CustomObjectsApi(api_client(control_plane))

    def make(point: str | None) -> Run:
        ns = f"t-{uuid.uuid4().hex[:8]}"
        admin("create", "namespace", ns)
        for double in (fake_fko, fake_strimzi, fake_pipeline):
            double.add_namespace(ns)
        operator, armed = armable_operator
        kube = admin.in_namespace(ns)
        run = Run(point, admin, kube, operator, fake_fko, kafka, postgres_uri, custom, armed)
        made.append(run)
        return run

    yield make
    for run in made:
        run.disarm()
    for run in made:
        run.kubectl.run("delete", "rr,sj", "--all", "--wait=false", check=False)
    for run in made:
        deadline = time.monotonic() + 60
        while fake_pipeline.active(run.ns) and time.monotonic() < deadline:
            time.sleep(0.2)
        # KafkaTopics go while the Strimzi double runs, and their topics with them.
        run.kubectl.run("delete", "kafkatopics", "--all", "--wait=false", check=False)
    for run in made:
        if run.shop:
            with psycopg.connect(postgres_uri, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {run.shop.schema} CASCADE")
        admin.run("delete", "namespace", run.ns, "--wait=false", check=False)
    fake_fko.reset()
    fake_pipeline.reset()


def play(story: str, run: Run, pipeline: FakePipeline) -> None:
    if story in SHOP_STORIES:
        STORIES[story](run, pipeline)
    else:
        STORIES[story](run)
    time.sleep(3)  # a few reconciles at rest: the end state must stay the end state
    run.check_operator()


@pytest.mark.parametrize("point", SELECTED, ids=[p.name for p in SELECTED])
def test_an_operator_killed_at_a_transition_ends_like_an_uninterrupted_run(
    point: Point,
    new_run: Callable[[str | None], Run],
    ledger: Ledger,
    matrix: Matrix,
    fake_pipeline: FakePipeline,
) -> None:
    if point.story not in matrix.references:
        reference = new_run(None)
        play(point.story, reference, fake_pipeline)
        end = snapshot(reference, ledger)
        matrix.references[point.story] = (end, faults(reference, ledger, end))
    expected, expected_faults = matrix.references[point.story]
    assert expected_faults == Faults([], [], []), f"the uninterrupted {point.story} story: {expected_faults}"

    started = time.monotonic()
    run = new_run(point.name)
    try:
        play(point.story, run, fake_pipeline)
    except AssertionError:  # the story never got to its end: a row that says so
        matrix.rows.append(Row(point, run.crashes[0] if run.crashes else None, False, Faults([], [], []), 0))
        raise
    finally:
        run.disarm()
    end = snapshot(run, ledger)
    found = faults(run, ledger, end)
    row = Row(
        point,
        run.crashes[0] if run.crashes else None,
        end == expected,
        found,
        time.monotonic() - started,
    )
    matrix.rows.append(row)
    assert run.crashes, f"{point.name} was never reached in the {point.story} story"
    assert len(run.crashes) == 1
    assert found == Faults([], [], []), found
    differs = {k: (end.get(k), expected.get(k)) for k in {*end, *expected} if end.get(k) != expected.get(k)}
    assert end == expected, f"after a crash at {point.name}, (this run, uninterrupted) differ: {differs}"
