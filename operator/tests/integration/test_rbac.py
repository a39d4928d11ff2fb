"""Least privilege, under the real API server: every verb of manifests/10-rbac.yaml is needed by a named
behaviour of the operator, and the file grants nothing more.

`VERBS` is the table (docs/rbac.md shows the same one): for each (object, API group, resource, verb) the
behaviour that needs it and a probe, which runs the operator's own code path for that behaviour (its adapters,
or Kopf's own list, watch and patch calls) with a ServiceAccount token. Each probe runs twice:

- under the file's rules as they are: it must pass (so a probe that cannot succeed proves nothing);
- under the file's rules less that one verb: it must fail, and the failure must be the API server's 403 naming
  the verb and resource, as it surfaces from that code path.

A verb in the file without a row fails the test, so no verb comes in without the behaviour that needs it.

The probes run as a ServiceAccount of their own (`kappa-rbac-probe`, in kappa-system) bound to copies of the
file's ClusterRole and Role, not as `kappa-operator` itself: the session's operator (started by other tests'
fixtures) runs under `kappa-operator`, and taking its verbs away under it would break what it is doing. RBAC
decides by the rules bound to a subject, so the copies decide as the originals do. Before each probe, the
authorizer is asked (SubjectAccessReview) until it has taken the swapped rules.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kopf._cogs.clients import auth as kopf_auth
from kopf._cogs.clients import fetching, patching, watching
from kopf._cogs.configs.configuration import OperatorSettings
from kopf._cogs.structs import credentials, finalizers, patches, references
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord

from kappa.adapters.claims import ViewClaims
from kappa.adapters.configmap_alias import ConfigMapAlias
from kappa.adapters.events import EventRecorder
from kappa.adapters.job_runtime.flink_deployment import FlinkDeploymentRuntime
from kappa.adapters.job_runtime.session import RUNTIME_LABEL
from kappa.adapters.kube import Kube
from kappa.adapters.leader import _Lock
from kappa.api.base import API_VERSION, GROUP, VERSION
from kappa.api.conditions import ConditionUpdate
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import kafka_connection
from kappa.controllers.status import write_status
from kappa.controllers.streamjob.replay import replay_run_for
from kappa.render.flink import kafka_topic
from tests.integration.testbed import ROOT, Kubectl, strimzi_kafka_kind

RBAC = ROOT / "manifests" / "10-rbac.yaml"
DOC = ROOT / "docs" / "rbac.md"
OPERATOR_NAMESPACE = "kappa-system"
PROBE = "kappa-rbac-probe"
PROBE_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{PROBE}"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*"}
FD_API = "flink.apache.org/v1beta1"
STRIMZI = ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]
FINALIZER = "kappa.dev/finalizer"


# -- the file ----------------------------------------------------------------------------------------------

Grant = tuple[str, str, str, str]
"""(object kind, API group, resource, verb): one verb the file grants."""


def shipped() -> dict[str, dict[str, Any]]:
    """The ClusterRole and the Role of manifests/10-rbac.yaml, by kind."""
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    return {d["kind"]: d for d in docs if d["kind"] in ("ClusterRole", "Role")}


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def all_grants() -> set[Grant]:
    return {(kind, *g) for kind, role in shipped().items() for g in grants(role)}


def rules(granted: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """One rule per (group, resource): the form does not matter to RBAC, only the triples."""
    by: dict[tuple[str, str], list[str]] = {}
    for group, resource, verb in sorted(granted):
        by.setdefault((group, resource), []).append(verb)
    return [{"apiGroups": [g], "resources": [r], "verbs": v} for (g, r), v in by.items()]


# -- what a probe has at hand ------------------------------------------------------------------------------


@dataclass
class World:
    namespace: str  # the probes' objects live here
    admin: Kube  # to set up and to check, as a user would
    admin_api: client.ApiClient
    kube: Kube  # the operator's adapter, as the probe ServiceAccount
    api: client.ApiClient  # the probe ServiceAccount's client, for the adapters that take one
    connection: credentials.ConnectionInfo  # the same credentials, for Kopf's client
    sj: dict[str, Any]  # the StreamJob `sj`, as created
    runs: dict[str, str]  # its ReplayRuns' uids by name

    def name(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def kopf_settings(self) -> OperatorSettings:
        """Kopf's settings as controllers/runtime.py sets them; no retries of a refused request (Kopf retries
        a 403 a few times with backoff before it escalates it: the same error, later)."""
        settings = OperatorSettings()
        settings.networking.request_timeout = 30
        settings.networking.error_backoffs = []
        settings.watching.server_timeout = 5
        return settings


class Refused(Exception):
    """The behaviour did not happen; carries what the operator's code path reported (its log, its result)."""


Probe = Callable[[World], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    kind: str
    group: str
    resource: str
    verb: str
    behaviour: str
    probe: Probe
    # The code path reports the API server's own message (which names the verb and resource). The event
    # recorder and the ConfigMap view report only the 403's reason ("Forbidden"): their rows check that (and,
    # for events, the Event missing or not counted).
    names_verb: bool = True

    @property
    def grant(self) -> Grant:
        return (self.kind, self.group, self.resource, self.verb)

    @property
    def id(self) -> str:
        group = f".{self.group}" if self.group else ""
        return f"{self.kind}:{self.verb}:{self.resource}{group}"


# -- probes: the operator's code paths ---------------------------------------------------------------------


def kopf_resource(group: str, version: str, plural: str, namespaced: bool = True) -> references.Resource:
    return references.Resource(
        group=group,
        version=version,
        plural=plural,
        namespaced=namespaced,
        subresources=frozenset({"status"}),
        verbs=frozenset({"list", "watch", "patch"}),
    )


KAPPA = {p: kopf_resource(GROUP, VERSION, p) for p in ("streamjobs", "replayruns", "materializedviews")}
CRDS = kopf_resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)
FLINKDEPLOYMENTS = kopf_resource("flink.apache.org", "v1beta1", "flinkdeployments")
log = logging.getLogger("kappa.test_rbac")


def kopf_lists(resource: references.Resource, name: str) -> Probe:
    """Kopf's initial listing of a kind, cluster-wide as `kappa run` watches, and the object in it."""

    async def probe(w: World) -> None:
        names = []
        async for chunk, _ in fetching.fetch_objs(
            settings=w.kopf_settings(), resource=resource, namespace=None, logger=log
        ):
            names += [obj["metadata"]["name"] for obj in chunk]
        assert name in names, f"{name} not in Kopf's listing of {resource.plural}: {names[:20]}"

    return probe


def kopf_watches(resource: references.Resource, api_version: str, kind: str, name: str) -> Probe:
    """Kopf's stream of a kind, cluster-wide (continuous_watch: the listing, then the watch from its
    resourceVersion); a change of the object comes in it."""

    async def probe(w: World) -> None:
        paused: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        marker = uuid.uuid4().hex[:8]
        stream = watching.continuous_watch(
            settings=w.kopf_settings(), resource=resource, namespace=None, operator_pause_waiter=paused
        )
        touch: asyncio.Task[None] | None = None
        try:
            async with contextlib.aclosing(stream):
                async for event in stream:
                    if event is watching.Bookmark.LISTED:
                        # The watch starts when the stream is read on: change the object then.
                        touch = asyncio.create_task(
                            w.admin.annotate(
                                api_version,
                                kind,
                                w.namespace if resource.namespaced else "",
                                name,
                                {"kappa.dev/rbac-probe": marker},
                                manager="rbac-probe",
                            )
                        )
                        continue
                    if isinstance(event, dict) and event.get("type") == "MODIFIED":
                        annotations = event["object"]["metadata"].get("annotations") or {}
                        if annotations.get("kappa.dev/rbac-probe") == marker:
                            return
        finally:
            paused.cancel()
            if touch is not None:
                await touch
        raise AssertionError(f"the change of {name} never came in Kopf's watch of {resource.plural}")

    return probe


def kopf_finalizer(plural: str, obj_name: Callable[[World], str]) -> Probe:
    """Kopf puts its finalizer on the object (processing.py: a JSON patch of metadata.finalizers, tested
    against the resourceVersion it read); the finalizer is then on the object."""

    async def probe(w: World) -> None:
        name = obj_name(w)
        for _ in range(5):  # the session's operator may write the object between our read and the patch
            body = await w.admin.get(API_VERSION, KIND[plural], w.namespace, name)
            assert body is not None
            finalizers.allow_deletion(body=body, finalizer=FINALIZER)  # so that Kopf has it to add
            patch = patches.Patch(
                body=body, fns=[functools.partial(finalizers.block_deletion, finalizer=FINALIZER)]
            )  # type: ignore[arg-type]
            _, remaining = await patching.patch_obj(
                settings=w.kopf_settings(),
                resource=KAPPA[plural],
                namespace=w.namespace,
                name=name,
                patch=patch,
                logger=log,
            )
            if not remaining:
                break
        else:
            raise AssertionError(f"Kopf's finalizer patch of {plural}/{name} kept conflicting")
        after = await w.admin.get(API_VERSION, KIND[plural], w.namespace, name)
        assert FINALIZER in (after or {}).get("metadata", {}).get("finalizers", [])

    return probe


KIND = {"streamjobs": "StreamJob", "replayruns": "ReplayRun", "materializedviews": "MaterializedView"}


def kube_gets(api_version: str, kind: str, obj_name: Callable[[World], str]) -> Probe:
    async def probe(w: World) -> None:
        name = obj_name(w)
        found = await w.kube.get(api_version, kind, w.namespace, name)
        assert found is not None and found["metadata"]["name"] == name

    return probe


def writes_status(plural: str, obj_name: Callable[[World], str]) -> Probe:
    """controllers/status.write_status: a condition, as a user reads it with `kubectl get -o yaml`."""

    async def probe(w: World) -> None:
        name = obj_name(w)
        written: list[dict[str, Any]] = []
        for _ in range(3):  # the session's operator, writing its own conditions meanwhile, may drop ours
            obj = await w.admin.get(API_VERSION, KIND[plural], w.namespace, name)
            assert obj is not None
            marker = uuid.uuid4().hex[:8]
            condition = ConditionUpdate("RbacProbe", True, "Probed", marker)
            generation = int(obj["metadata"].get("generation", 1))
            await write_status(w.kube, KIND[plural], obj, {}, [condition], [], generation, datetime.now(UTC))
            after = await w.admin.get(API_VERSION, KIND[plural], w.namespace, name)
            conditions = (after or {}).get("status", {}).get("conditions", [])
            written = [c for c in conditions if c["type"] == "RbacProbe"]
            if [c["message"] for c in written] == [marker]:
                return
        raise AssertionError(f"the condition was not written: {written}")

    return probe


async def creates_replayrun(w: World) -> None:
    """strategy replay: a new version as a ReplayRun (streamjob/replay.replay_run_for, applied)."""
    job = await w.admin.get(API_VERSION, "StreamJob", w.namespace, "sj")
    assert job is not None
    spec = StreamJobSpec.model_validate({**job["spec"], "version": "v3"})
    run = w.name("sj-v3")
    await w.kube.apply(replay_run_for(w.namespace, "sj", job["metadata"]["uid"], run, spec))
    assert await w.admin.get(API_VERSION, "ReplayRun", w.namespace, run) is not None


async def records_event(w: World) -> None:
    """adapters/events.EventRecorder: an Event on the StreamJob (kopf.event posts the same way)."""
    obj = await w.admin.get(API_VERSION, "StreamJob", w.namespace, "sj")
    assert obj is not None
    reason = "RbacProbe" + uuid.uuid4().hex[:6]
    with captured("kappa.adapters.events") as logs:
        await EventRecorder(w.api).record(obj, "Normal", reason, "probe", time.time())
    counts = await event_counts(w, reason)
    if counts != [1]:
        raise Refused(f"Events {reason}: {counts}; the operator logged: {logs}")


async def counts_repeated_event(w: World) -> None:
    """A repeated event is one Event whose count goes up (EventSeries: the 2nd occurrence patches count 2)."""
    obj = await w.admin.get(API_VERSION, "StreamJob", w.namespace, "sj")
    assert obj is not None
    reason = "RbacProbe" + uuid.uuid4().hex[:6]
    recorder = EventRecorder(w.api)
    with captured("kappa.adapters.events") as logs:
        await recorder.record(obj, "Normal", reason, "probe", time.time())
        await recorder.record(obj, "Normal", reason, "probe", time.time())
    counts = await event_counts(w, reason)
    if counts != [2]:
        raise Refused(f"Events {reason}: counts {counts}; the operator logged: {logs}")


async def event_counts(w: World, reason: str) -> list[int]:
    found = await w.admin.select("v1", "Event", w.namespace, "")
    return [int(e.get("count") or 0) for e in found if e.get("reason") == reason]


@contextlib.contextmanager
def captured(logger: str) -> Iterator[list[str]]:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler, target = Keep(logging.DEBUG), logging.getLogger(logger)
    level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        target.removeHandler(handler)
        target.setLevel(level)


def flink_deployment(namespace: str, name: str, parallelism: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": FD_API,
        "kind": "FlinkDeployment",
        # No kappa.dev/job label: the session's operator, if running, must not take it for a version of sj.
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "flink:2.2",
            "flinkVersion": "v2_2",
            "serviceAccount": "flink",
            "job": {"jarURI": "local:///opt/flink/probe.jar", "parallelism": parallelism, "state": "running"},
        },
    }


async def applies_new_deployment(w: World) -> None:
    """A new version's FlinkDeployment (FlinkDeploymentRuntime.apply: server-side apply)."""
    name = w.name("probe-v9")
    await FlinkDeploymentRuntime(w.kube).apply(flink_deployment(w.namespace, name))
    assert await w.admin.get(FD_API, "FlinkDeployment", w.namespace, name) is not None


async def applies_changed_deployment(w: World) -> None:
    """An upgrade or suspension changes a version's FlinkDeployment (the same apply on an existing one)."""
    name = w.name("probe-v8")
    await w.admin.apply(flink_deployment(w.namespace, name))
    await FlinkDeploymentRuntime(w.kube).apply(flink_deployment(w.namespace, name, parallelism=2))
    after = await w.admin.get(FD_API, "FlinkDeployment", w.namespace, name)
    assert (after or {})["spec"]["job"]["parallelism"] == 2


async def gets_deployment(w: World) -> None:
    name = w.name("probe-v7")
    await w.admin.apply(flink_deployment(w.namespace, name))
    found = await FlinkDeploymentRuntime(w.kube).get(w.namespace, name)
    assert found is not None and found["metadata"]["name"] == name


async def deletes_deployment(w: World) -> None:
    """A retired version's FlinkDeployment goes (FlinkDeploymentRuntime.delete)."""
    name = w.name("probe-v6")
    await w.admin.apply(flink_deployment(w.namespace, name))
    assert await FlinkDeploymentRuntime(w.kube).delete(w.namespace, name) is True


async def disposal_state(w: World, *, complete: bool) -> tuple[str, str]:
    """A running deployment, and (complete) the disposal snapshot FKO has completed; (deployment, path)."""
    deployment, path = w.name("probe-v5"), f"s3://savepoints/{uuid.uuid4().hex}"
    await w.admin.apply(flink_deployment(w.namespace, deployment))
    await w.admin.patch_status(
        FD_API, "FlinkDeployment", w.namespace, deployment, {"jobStatus": {"state": "RUNNING"}}
    )
    if complete:
        assert (
            await FlinkDeploymentRuntime(w.admin).dispose_savepoint(w.namespace, deployment, path)
            == "pending"
        )
        snapshots = await w.admin.select(
            FD_API, "FlinkStateSnapshot", w.namespace, "kappa.dev/savepoint=dispose"
        )
        name = next(s["metadata"]["name"] for s in snapshots if s["spec"]["savepoint"]["path"] == path)
        await w.admin.patch_status(FD_API, "FlinkStateSnapshot", w.namespace, name, {"state": "COMPLETED"})
    return deployment, path


async def asks_disposal(w: World) -> None:
    """A savepoint past the history is disposed of through FKO: a FlinkStateSnapshot naming it is read
    (get), then applied (create)."""
    deployment, path = await disposal_state(w, complete=False)
    result = await FlinkDeploymentRuntime(w.kube).dispose_savepoint(w.namespace, deployment, path)
    assert result == "pending", result


async def asks_disposal_again(w: World) -> None:
    """The disposal asked again through another deployment (the first stopped running): the snapshot exists,
    and the apply is a patch."""
    deployment, path = await disposal_state(w, complete=False)
    runtime = FlinkDeploymentRuntime(w.admin)
    assert await runtime.dispose_savepoint(w.namespace, deployment, path) == "pending"
    other, _ = await disposal_state(w, complete=False)
    assert await FlinkDeploymentRuntime(w.kube).dispose_savepoint(w.namespace, other, path) == "pending"


async def completes_disposal(w: World) -> None:
    """Once FKO completed the snapshot, deleting it disposes of the savepoint (FKO's finalizer)."""
    deployment, path = await disposal_state(w, complete=True)
    result = await FlinkDeploymentRuntime(w.kube).dispose_savepoint(w.namespace, deployment, path)
    assert result == "disposed", result


def topic(w: World, api: str, name: str, partitions: int = 1) -> dict[str, Any]:
    job = w.sj
    return kafka_topic(
        namespace=w.namespace,
        job="sj",
        owner_uid=job["metadata"]["uid"],
        topic=name,
        version="v1",
        partitions=partitions,
        replicas=1,
        config={},
        cluster="probe-kafka",
        api_version=api,
    )


async def applies_new_topic(w: World) -> None:
    """A version's output topic as a Strimzi KafkaTopic (streamjob/deploy.ensure_topic: server-side apply)."""
    api = await w.kube.preferred("KafkaTopic", STRIMZI)
    assert api is not None
    body = topic(w, api, w.name("sessions.v9"))
    await w.kube.apply(body)
    assert await w.admin.get(api, "KafkaTopic", w.namespace, body["metadata"]["name"]) is not None


async def applies_changed_topic(w: World) -> None:
    api = await w.kube.preferred("KafkaTopic", STRIMZI)
    assert api is not None
    name = w.name("sessions.v8")
    await w.admin.apply(topic(w, api, name))
    await w.kube.apply(topic(w, api, name, partitions=3))
    after = await w.admin.get(api, "KafkaTopic", w.namespace, name.replace(".", "-"))
    assert (after or {})["spec"]["partitions"] == 3


async def deletes_topic(w: World) -> None:
    """A retired version's topic goes (materializedview/retention, replayrun/cleanup: Kube.delete of its
    KafkaTopic)."""
    api = await w.kube.preferred("KafkaTopic", STRIMZI)
    assert api is not None
    body = topic(w, api, w.name("sessions.v7"))
    await w.admin.apply(body)
    assert await w.kube.delete(api, "KafkaTopic", w.namespace, body["metadata"]["name"]) is True


async def gets_kafka_user(w: World) -> None:
    api = await w.kube.preferred("KafkaUser", STRIMZI)
    assert api is not None
    found = await w.kube.get(api, "KafkaUser", w.namespace, "probe-user")
    assert found is not None


async def reads_bootstrap(w: World) -> None:
    """clusterRef: the bootstrap servers from the Strimzi Kafka's status (controllers/cluster.py)."""
    spec = StreamJobSpec.model_validate(
        {**w.sj["spec"], "source": {**w.sj["spec"]["source"], "kafka": {"clusterRef": "probe-kafka"}}}
    )
    connection = await kafka_connection(w.kube, spec, w.namespace)
    assert connection is not None and connection.bootstrap == "probe-kafka-bootstrap:9092", connection


async def reads_pointer(w: World) -> None:
    """A ConfigMap view's pointer is read (ConfigMapAlias.target, each look of the view)."""
    name = w.name("orders-active")
    await w.admin.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": w.namespace},
            "data": {"topic": "orders.v1"},
        }
    )
    assert await ConfigMapAlias(w.api).target(w.namespace, name, "topic") == "orders.v1"


async def creates_pointer(w: World) -> None:
    """The first cutover of a ConfigMap view creates its pointer (ConfigMapAlias.cutover)."""
    name = w.name("orders-active")
    cut = await ConfigMapAlias(w.api).cutover(w.namespace, name, "topic", "orders.v1", expected=None)
    assert cut.to_table == "orders.v1" and not cut.already_done


async def moves_pointer(w: World) -> None:
    """A cutover moves the pointer: a replace carrying the resourceVersion read (a compare-and-swap)."""
    name = w.name("orders-active")
    await w.admin.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": w.namespace},
            "data": {"topic": "orders.v1"},
        }
    )
    await ConfigMapAlias(w.api).cutover(w.namespace, name, "topic", "orders.v2", expected="orders.v1")
    after = await w.admin.get("v1", "ConfigMap", w.namespace, name)
    assert (after or {})["data"]["topic"] == "orders.v2"


def session_record(w: World, job: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{job}-v1.flink-session",
            "namespace": w.namespace,
            "labels": {"kappa.dev/job": job, RUNTIME_LABEL: "session"},
        },
        "data": {"spec": "{}", "record": "{}"},
    }


async def lists_session_records(w: World) -> None:
    """The session runtime finds a job's records by label (SessionRuntime.select, .release)."""
    job = w.name("sj")
    await w.admin.create(session_record(w, job))
    found = await w.kube.select(
        "v1", "ConfigMap", w.namespace, f"kappa.dev/job={job},{RUNTIME_LABEL}=session"
    )
    assert [cm["metadata"]["name"] for cm in found] == [f"{job}-v1.flink-session"]


async def deletes_session_record(w: World) -> None:
    """A version's session record goes with the version (SessionRuntime.delete)."""
    record = session_record(w, w.name("sj"))
    await w.admin.create(record)
    assert await w.kube.delete("v1", "ConfigMap", w.namespace, record["metadata"]["name"]) is True


async def reads_named_secret(w: World) -> None:
    """A MaterializedView's PostgreSQL URI, from the Secret and key its spec names (Kube.secret_value)."""
    assert await w.kube.secret_value(w.namespace, "sessions-db", "uri") == "postgresql://probe@db/kappa"


def held_by(w: World, name: str) -> dict[str, Any]:
    """A ReplayRun that exists: a claim's Lease is owned by its run, and the garbage collector deletes a
    Lease whose owner does not exist (a made-up uid lost its Lease within seconds)."""
    return {"metadata": {"name": name, "uid": w.runs[name]}}


async def claims_view(w: World) -> None:
    """One ReplayRun at a time holds a MaterializedView: the first claim creates the Lease."""
    view = w.name("view")
    assert await ViewClaims(w.kube).claim(w.namespace, view, held_by(w, "sj-v2"), never_stale) is None
    assert await w.admin.get("coordination.k8s.io/v1", "Lease", w.namespace, f"{view}.view-claim") is not None


async def sees_view_held(w: World) -> None:
    """A second run sees the view held by the first (get), and waits."""
    view = w.name("view")
    await ViewClaims(w.admin).claim(w.namespace, view, held_by(w, "sj-v2"), never_stale)
    claims = ViewClaims(w.kube)
    assert await claims.claim(w.namespace, view, held_by(w, "sj-v4"), never_stale) == "sj-v2"


async def takes_view_over(w: World) -> None:
    """A claim left by a run that has ended is handed over (update with its resourceVersion)."""
    view = w.name("view")
    await ViewClaims(w.admin).claim(w.namespace, view, held_by(w, "sj-v2"), never_stale)
    assert await ViewClaims(w.kube).claim(w.namespace, view, held_by(w, "sj-v4"), always_stale) is None
    lease = await w.admin.get("coordination.k8s.io/v1", "Lease", w.namespace, f"{view}.view-claim")
    assert (lease or {})["spec"]["holderIdentity"].startswith("sj-v4/")


async def never_stale(name: str, uid: str) -> bool:
    return False


async def always_stale(name: str, uid: str) -> bool:
    return True


def election_record(identity: str) -> LeaderElectionRecord:
    now = str(datetime.now())  # as kubernetes.leaderelection writes them
    return LeaderElectionRecord(identity, "15", now, now)


async def election_lease(w: World) -> str:
    """A Lease in the operator's namespace, held by another replica."""
    name = w.name("kappa-operator-leader")
    lock = _Lock(name, OPERATOR_NAMESPACE, "other", w.admin_api, 5)
    assert lock.create(name, OPERATOR_NAMESPACE, election_record("other"))
    return name


async def election_reads(w: World) -> None:
    """Leader election: each look reads the Lease (_Lock.get)."""
    name = await election_lease(w)
    ok, found = await asyncio.to_thread(
        _Lock(name, OPERATOR_NAMESPACE, "me", w.api, 5).get, name, OPERATOR_NAMESPACE
    )
    if not ok:
        raise found
    assert found.holder_identity == "other"


async def election_creates(w: World) -> None:
    """Leader election: the first replica creates the Lease (_Lock.create)."""
    name = w.name("kappa-operator-leader")
    lock = _Lock(name, OPERATOR_NAMESPACE, "me", w.api, 5)
    with captured("kappa.leader") as logs:
        created = await asyncio.to_thread(lock.create, name, OPERATOR_NAMESPACE, election_record("me"))
    if not created:
        raise Refused(f"the Lease was not created; the operator logged: {logs}")


async def election_updates(w: World) -> None:
    """Leader election: the holder renews, a replica takes a free Lease over (_Lock.update: a CAS)."""
    name = await election_lease(w)
    lock = _Lock(name, OPERATOR_NAMESPACE, "me", w.api, 5)
    ok, found = await asyncio.to_thread(lock.get, name, OPERATOR_NAMESPACE)
    assert ok, found
    with captured("kappa.leader") as logs:
        updated = await asyncio.to_thread(lock.update, name, OPERATOR_NAMESPACE, election_record("me"))
    if not updated:
        raise Refused(f"the Lease was not updated; the operator logged: {logs}")


def sj(w: World) -> str:
    return "sj"


def rr(w: World) -> str:
    return "sj-v2"


def mv(w: World) -> str:
    return "sessions"


C, R = "ClusterRole", "Role"
K, FL, ST, CORE, COORD, APIEXT = (
    "kappa.dev",
    "flink.apache.org",
    "kafka.strimzi.io",
    "",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
)
TOPICS = kopf_resource(ST, "v1", "kafkatopics")
# fmt: off
VERBS = [
    # kind, API group, resource, verb, the behaviour that needs it, its probe
    Row(C, K, "streamjobs", "get", "a look reads its StreamJob", kube_gets(API_VERSION, "StreamJob", sj)),
    Row(C, K, "streamjobs", "list", "Kopf lists StreamJobs (handlers, streamjobs_by_view index)",
        kopf_lists(KAPPA["streamjobs"], "sj")),
    Row(C, K, "streamjobs", "watch", "Kopf follows StreamJobs (spec changes, rollback requests)",
        kopf_watches(KAPPA["streamjobs"], API_VERSION, "StreamJob", "sj")),
    Row(C, K, "streamjobs", "patch", "Kopf's finalizer on a StreamJob (final savepoint at deletion)",
        kopf_finalizer("streamjobs", sj)),
    Row(C, K, "replayruns", "get", "a look reads its ReplayRun", kube_gets(API_VERSION, "ReplayRun", rr)),
    Row(C, K, "replayruns", "list", "Kopf lists ReplayRuns (handlers, replayruns_by_job index)",
        kopf_lists(KAPPA["replayruns"], "sj-v2")),
    Row(C, K, "replayruns", "watch", "Kopf follows ReplayRuns (a run wakes its StreamJob)",
        kopf_watches(KAPPA["replayruns"], API_VERSION, "ReplayRun", "sj-v2")),
    Row(C, K, "replayruns", "patch", "Kopf's finalizer on a ReplayRun (cleanup when deleted before cutover)",
        kopf_finalizer("replayruns", rr)),
    Row(C, K, "replayruns", "create", "strategy replay creates a ReplayRun for a new version (apply)",
        creates_replayrun),
    Row(C, K, "materializedviews", "get", "a run's look reads its MaterializedView",
        kube_gets(API_VERSION, "MaterializedView", mv)),
    Row(C, K, "materializedviews", "list", "Kopf lists MaterializedViews (handlers)",
        kopf_lists(KAPPA["materializedviews"], "sessions")),
    Row(C, K, "materializedviews", "watch", "Kopf follows MaterializedViews (spec changes)",
        kopf_watches(KAPPA["materializedviews"], API_VERSION, "MaterializedView", "sessions")),
    Row(C, K, "streamjobs/status", "patch", "a StreamJob's status and conditions",
        writes_status("streamjobs", sj)),
    Row(C, K, "replayruns/status", "patch", "a ReplayRun's status and conditions",
        writes_status("replayruns", rr)),
    Row(C, K, "materializedviews/status", "patch", "a MaterializedView's status and conditions",
        writes_status("materializedviews", mv)),
    Row(C, APIEXT, "customresourcedefinitions", "list", "Kopf lists CRDs (kinds installed after start)",
        kopf_lists(CRDS, "streamjobs.kappa.dev")),
    Row(C, APIEXT, "customresourcedefinitions", "watch", "Kopf follows CRDs (FKO or Strimzi installed later)",
        kopf_watches(CRDS, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "streamjobs.kappa.dev")),
    Row(C, CORE, "events", "create", "Events on our objects", records_event, names_verb=False),
    Row(C, CORE, "events", "patch", "a repeated Event is counted (series)", counts_repeated_event,
        names_verb=False),
    Row(C, FL, "flinkdeployments", "get", "a look reads a version's FlinkDeployment", gets_deployment),
    Row(C, FL, "flinkdeployments", "list", "Kopf lists FlinkDeployments (flinkdeployments_by_job index)",
        kopf_lists(FLINKDEPLOYMENTS, "probe-v1")),
    Row(C, FL, "flinkdeployments", "watch", "a FlinkDeployment's change wakes its StreamJob",
        kopf_watches(FLINKDEPLOYMENTS, FD_API, "FlinkDeployment", "probe-v1")),
    Row(C, FL, "flinkdeployments", "create", "a new version's FlinkDeployment (apply)",
        applies_new_deployment),
    Row(C, FL, "flinkdeployments", "patch", "an upgrade or suspension changes a FlinkDeployment (apply)",
        applies_changed_deployment),
    Row(C, FL, "flinkdeployments", "delete", "a retired version's FlinkDeployment goes", deletes_deployment),
    Row(C, FL, "flinkstatesnapshots", "get", "a savepoint's disposal reads its FlinkStateSnapshot",
        asks_disposal),
    Row(C, FL, "flinkstatesnapshots", "create", "a savepoint's disposal (or final savepoint) is asked of FKO",
        asks_disposal),
    Row(C, FL, "flinkstatesnapshots", "patch", "a disposal asked again through another deployment (apply)",
        asks_disposal_again),
    Row(C, FL, "flinkstatesnapshots", "delete", "a completed disposal snapshot is deleted (FKO disposes)",
        completes_disposal),
    Row(C, ST, "kafkatopics", "list", "Kopf lists KafkaTopics (a topic's readiness)",
        kopf_lists(TOPICS, "probe-topic")),
    Row(C, ST, "kafkatopics", "watch", "a KafkaTopic turning Ready wakes its StreamJob",
        kopf_watches(TOPICS, "kafka.strimzi.io/v1", "KafkaTopic", "probe-topic")),
    Row(C, ST, "kafkatopics", "create", "a version's output topic (apply)", applies_new_topic),
    Row(C, ST, "kafkatopics", "patch", "a version's output topic changed (apply)", applies_changed_topic),
    Row(C, ST, "kafkatopics", "delete", "a retired version's or abandoned replay's topic goes",
        deletes_topic),
    Row(C, ST, "kafkas", "get", "clusterRef: bootstrap servers from the Kafka's status", reads_bootstrap),
    Row(C, ST, "kafkausers", "get", "clusterRef: Kafka credentials from a KafkaUser's Secret",
        gets_kafka_user),
    Row(C, CORE, "configmaps", "get", "a ConfigMap view's pointer is read", reads_pointer),
    Row(C, CORE, "configmaps", "create", "a ConfigMap view's first cutover creates its pointer",
        creates_pointer, names_verb=False),
    Row(C, CORE, "configmaps", "update", "a cutover moves a ConfigMap view's pointer (compare-and-swap)",
        moves_pointer, names_verb=False),
    Row(C, CORE, "configmaps", "list", "the session runtime finds a job's records by label",
        lists_session_records),
    Row(C, CORE, "configmaps", "delete", "a version's session record goes", deletes_session_record),
    Row(C, CORE, "secrets", "get", "a Secret named by a spec is read (PostgreSQL URI)", reads_named_secret),
    Row(C, COORD, "leases", "get", "a run sees a MaterializedView held by another", sees_view_held),
    Row(C, COORD, "leases", "create", "a ReplayRun claims a MaterializedView", claims_view),
    Row(C, COORD, "leases", "update", "a view held by an ended run is handed over", takes_view_over),
    Row(R, COORD, "leases", "get", "leader election reads the Lease", election_reads),
    Row(R, COORD, "leases", "create", "leader election: the first replica creates the Lease",
        election_creates),
    Row(R, COORD, "leases", "update", "leader election: renew, take over, release", election_updates),
]
# fmt: on
ROWS = {row.grant: row for row in VERBS}
LEASE_VERBS = {(C, COORD, "leases", verb) for verb in ("get", "create", "update")}


# -- the probe ServiceAccount and its swappable copies of the file's roles ---------------------------------


class Roles:
    """The probe ServiceAccount's ClusterRole and Role: the file's rules, less what a probe takes away."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.authz = client.AuthorizationV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace  # where ClusterRole grants are asked about
        self.full = {kind: grants(role) for kind, role in shipped().items()}
        self.current: dict[str, set[tuple[str, str, str]]] = {}

    def install(self) -> None:
        meta = client.V1ObjectMeta(name=PROBE, labels={"app.kubernetes.io/name": "kappa-rbac-probe"})
        subject = [client.RbacV1Subject(kind="ServiceAccount", name=PROBE, namespace=OPERATOR_NAMESPACE)]
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_service_account(
                OPERATOR_NAMESPACE, client.V1ServiceAccount(metadata=meta)
            )
        with contextlib.suppress(ApiException):
            self.rbac.create_cluster_role_binding(
                client.V1ClusterRoleBinding(
                    metadata=meta,
                    subjects=subject,
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=PROBE
                    ),
                )
            )
        with contextlib.suppress(ApiException):
            self.rbac.create_namespaced_role_binding(
                OPERATOR_NAMESPACE,
                client.V1RoleBinding(
                    metadata=meta,
                    subjects=subject,
                    role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=PROBE),
                ),
            )
        self.grant_all_but(set())

    def token(self) -> str:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        )
        return str(
            self.core.create_namespaced_service_account_token(PROBE, OPERATOR_NAMESPACE, request).status.token
        )

    def grant_all_but(self, without: set[Grant]) -> None:
        """The file's rules less `without`; returns once the authorizer decides by them."""
        want = {kind: self.full[kind] - {g[1:] for g in without if g[0] == kind} for kind in self.full}
        if want == self.current:
            return
        before = self.current or {kind: set() for kind in self.full}
        meta = client.V1ObjectMeta(name=PROBE, labels={"app.kubernetes.io/name": "kappa-rbac-probe"})
        cluster_role = client.V1ClusterRole(metadata=meta, rules=rules(want["ClusterRole"]))
        role = client.V1Role(metadata=meta, rules=rules(want["Role"]))
        try:
            self.rbac.replace_cluster_role(PROBE, cluster_role)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.rbac.create_cluster_role(cluster_role)
        try:
            self.rbac.replace_namespaced_role(PROBE, OPERATOR_NAMESPACE, role)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.rbac.create_namespaced_role(OPERATOR_NAMESPACE, role)
        self.current = want
        self.wait(want, before)

    def allowed(self, kind: str, group: str, resource: str, verb: str) -> bool:
        resource, _, subresource = resource.partition("/")
        review = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=PROBE_USER,
                groups=[
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{OPERATOR_NAMESPACE}",
                    "system:authenticated",
                ],
                resource_attributes=client.V1ResourceAttributes(
                    namespace=OPERATOR_NAMESPACE if kind == "Role" else self.namespace,
                    verb=verb,
                    group=group,
                    resource=resource,
                    subresource=subresource,
                ),
            )
        )
        return bool(self.authz.create_subject_access_review(review).status.allowed)

    def wait(
        self, want: dict[str, set[tuple[str, str, str]]], before: dict[str, set[tuple[str, str, str]]]
    ) -> None:
        """RBAC's authorizer follows role changes through a watch: ask until it decides by the new rules."""

        def expected(kind: str, g: tuple[str, str, str]) -> bool:
            return g in want[kind] or (kind == "Role" and g in want["ClusterRole"])

        changed = {
            (kind, *g)
            for kind in self.full
            for g in self.full[kind]
            if (g in want[kind]) != (g in before.get(kind, set()))
        }
        deadline = time.monotonic() + 20
        pending = changed
        while pending:
            pending = {c for c in pending if self.allowed(*c) != expected(c[0], c[1:])}
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"the authorizer did not take the new rules for {sorted(pending)}")
            if pending:
                time.sleep(0.05)


# -- the objects the probes act on -------------------------------------------------------------------------

# Strimzi's Kafka kind is served for this module only (testbed.strimzi_kafka_kind); status.listeners[]
# .bootstrapServers is Strimzi's ListenerStatus field.


def job_spec() -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "examples" / "03-streamjob-sessionizer.yaml").read_text())["spec"]
    spec["source"]["kafka"] = {"bootstrapServers": "127.0.0.1:1"}  # nothing listens: the job stays put
    spec["suspend"] = True
    return dict(spec)


async def objects(admin: Kube, namespace: str) -> tuple[dict[str, Any], dict[str, str]]:
    """What the probes find: the StreamJob `sj`, its ReplayRuns `sj-v2` and `sj-v4`, the view `sessions`, a
    Secret, a FlinkDeployment, a KafkaTopic, a KafkaUser and a Kafka."""
    ns = {"namespace": namespace}
    job = await admin.apply(
        {"apiVersion": API_VERSION, "kind": "StreamJob", "metadata": {"name": "sj", **ns}, "spec": job_spec()}
    )
    runs = {}
    for version in ("v2", "v4"):
        created = await admin.apply(
            {
                "apiVersion": API_VERSION,
                "kind": "ReplayRun",
                "metadata": {"name": f"sj-{version}", **ns},
                "spec": {
                    "jobRef": {"name": "sj"},
                    "version": version,
                    "from": {"earliest": True},
                    "approval": "Manual",
                },
            }
        )
        runs[created["metadata"]["name"]] = created["metadata"]["uid"]
    await admin.apply(
        {
            "apiVersion": API_VERSION,
            "kind": "MaterializedView",
            "metadata": {"name": "sessions", **ns},
            "spec": {"backend": {"type": "configMap", "configMap": {"name": "sessions-active"}}},
        }
    )
    await admin.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "sessions-db", **ns},
            "data": {"uri": base64.b64encode(b"postgresql://probe@db/kappa").decode()},
        }
    )
    await admin.apply(flink_deployment(namespace, "probe-v1"))
    await admin.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaTopic",
            "metadata": {"name": "probe-topic", "labels": {"strimzi.io/cluster": "probe-kafka"}, **ns},
            "spec": {"partitions": 1, "replicas": 1},
        }
    )
    await admin.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {"name": "probe-user", "labels": {"strimzi.io/cluster": "probe-kafka"}, **ns},
            "spec": {"authentication": {"type": "scram-sha-512"}},
        }
    )
    kafka_api = await admin.preferred("Kafka", STRIMZI)
    assert kafka_api is not None
    await admin.apply(
        {"apiVersion": kafka_api, "kind": "Kafka", "metadata": {"name": "probe-kafka", **ns}, "spec": {}}
    )
    await admin.patch_status(
        kafka_api,
        "Kafka",
        namespace,
        "probe-kafka",
        {"listeners": [{"name": "plain", "bootstrapServers": "probe-kafka-bootstrap:9092"}]},
    )
    return job, runs


def probe_kubeconfig(admin_kubeconfig: Path, token: str, out: Path) -> credentials.ConnectionInfo:
    cluster = yaml.safe_load(admin_kubeconfig.read_text())["clusters"][0]["cluster"]
    server, ca = cluster["server"], cluster["certificate-authority"]
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca}}],
                "users": [{"name": PROBE, "user": {"token": token}}],
                "contexts": [{"name": PROBE, "context": {"cluster": "c", "user": PROBE}}],
                "current-context": PROBE,
            }
        )
    )
    out.chmod(0o600)
    return credentials.ConnectionInfo(server=server, ca_path=ca, token=token, scheme="Bearer")


@pytest.fixture(scope="module")
def world(
    admin: Kubectl, crds: list[str], upstream_crds: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, Roles]]:
    admin_api = config.new_client_from_config(config_file=str(admin.kubeconfig))
    namespace = f"rbac-{uuid.uuid4().hex[:8]}"
    admin("create", "namespace", namespace)
    admin("apply", "--server-side", "-f", str(ROOT / "manifests" / "00-namespace.yaml"))
    with strimzi_kafka_kind(admin):
        yield from _world(admin, admin_api, namespace, tmp_path_factory)


def _world(
    admin: Kubectl, admin_api: Any, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, Roles]]:
    roles = Roles(admin_api, namespace)
    roles.install()
    kubeconfig = tmp_path_factory.mktemp("rbac") / "probe.kubeconfig"
    connection = probe_kubeconfig(admin.kubeconfig, roles.token(), kubeconfig)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    admin_kube = Kube(config.new_client_from_config(config_file=str(admin.kubeconfig)))
    job, runs = asyncio.run(objects(admin_kube, namespace))
    yield World(namespace, admin_kube, admin_api, Kube(api), api, connection, job, runs), roles
    # Leave no finalizer behind that only a running operator would remove.
    for kind in ("streamjobs", "replayruns"):
        for name in admin("get", kind, "-n", namespace, "-o", "name").split():
            admin.run(
                "patch",
                "-n",
                namespace,
                name,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
    admin.run("delete", "namespace", namespace, "--wait=false", check=False)
    admin.run("delete", "clusterrolebinding,clusterrole", PROBE, "--ignore-not-found", check=False)
    admin.run(
        "delete",
        "-n",
        OPERATOR_NAMESPACE,
        "rolebinding,role,serviceaccount",
        PROBE,
        "--ignore-not-found",
        check=False,
    )


def run(w: World, probe: Probe) -> None:
    async def main() -> None:
        vault = credentials.Vault()
        await vault.populate({"probe": w.connection})
        kopf_auth.vault_var.set(vault)
        try:
            await asyncio.wait_for(probe(w), 60)
        finally:
            await vault.close()

    asyncio.run(main())


def refusal(exc: BaseException) -> str:
    """The error as one line, with the quotes of a JSON body inside a message unescaped."""
    return re.sub(r'\\+"', '"', " ".join(f"{exc} {getattr(exc, 'body', '') or ''}".split()))


# -- the tests ---------------------------------------------------------------------------------------------


def test_every_verb_in_the_file_has_a_behaviour_that_needs_it() -> None:
    granted = all_grants()
    assert not granted - set(ROWS), (
        f"verbs without a behaviour (a row in VERBS): {sorted(granted - set(ROWS))}"
    )
    assert not set(ROWS) - granted, f"rows for verbs the file does not grant: {sorted(set(ROWS) - granted)}"


def test_no_wildcard_no_secret_writes_no_exec() -> None:
    for kind, role in shipped().items():
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule, (kind, rule)
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert not any("*" in item for item in rule.get(field, [])), (kind, rule)
            assert not any(r.startswith("pods") for r in rule["resources"]), (kind, rule)
    secret_verbs = {g[3] for g in all_grants() if g[1:3] == ("", "secrets")}
    assert secret_verbs == {"get"}, f"Secrets are read by name only, never written or listed: {secret_verbs}"
    assert not {g for g in all_grants() if g[2] in ("pods/exec", "pods/attach") or g[3] == "escalate"}


def test_the_doc_lists_every_verb_with_its_behaviour() -> None:
    """docs/rbac.md has the table of VERBS: a line per verb, with the same behaviour (then the code path)."""
    table = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0] in ("ClusterRole", "Role"):
            table.add((cells[0], "" if cells[1] == "core" else cells[1], cells[2], cells[3], cells[4]))
    expected = {(*row.grant, row.behaviour) for row in VERBS}
    missing = "\n".join(
        f"| {k} | {g or 'core'} | {r} | {v} | {b} |" for k, g, r, v, b in sorted(expected - table)
    )
    assert table == expected, f"docs/rbac.md misses (or has other) lines; expected lines:\n{missing}"


@pytest.mark.parametrize("row", VERBS, ids=[row.id for row in VERBS])
def test_the_behaviour_works_with_the_shipped_rules(world: tuple[World, Roles], row: Row) -> None:
    w, roles = world
    # A Role row is shown to work from the Role alone: the ClusterRole's (cluster-wide) lease verbs go.
    roles.grant_all_but(LEASE_VERBS if row.kind == R else set())
    run(w, row.probe)


@pytest.mark.parametrize("row", VERBS, ids=[row.id for row in VERBS])
def test_the_behaviour_breaks_without_its_verb(world: tuple[World, Roles], row: Row) -> None:
    w, roles = world
    # The ClusterRole grants leases cluster-wide too: a Role verb is taken from both.
    roles.grant_all_but({row.grant, (C, row.group, row.resource, row.verb)} if row.kind == R else {row.grant})
    with pytest.raises(Exception) as caught:  # noqa: PT011 (each path raises its own)
        run(w, row.probe)
    text = refusal(caught.value)
    assert "Forbidden" in text or "forbidden" in text, text
    if row.names_verb:
        assert f'cannot {row.verb} resource "{row.resource}"' in text, text
        assert f'in API group "{row.group}"' in text, text


def test_the_operator_service_account_has_the_file_rules(
    operator_kubeconfig: Path, world: tuple[World, Roles]
) -> None:
    """The probes ran as copies; the operator's own ServiceAccount is bound to the originals."""
    w, _ = world
    api = config.new_client_from_config(config_file=str(operator_kubeconfig))
    authz = client.AuthorizationV1Api(api)
    refused = []
    for kind, group, path, verb in sorted(all_grants()):
        resource, _, subresource = path.partition("/")
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    namespace=OPERATOR_NAMESPACE if kind == R else w.namespace,
                    verb=verb,
                    group=group,
                    resource=resource,
                    subresource=subresource,
                )
            )
        )
        if not authz.create_self_subject_access_review(review).status.allowed:
            refused.append((kind, group, resource, subresource, verb))
    assert not refused


# Beyond the file: what the operator must never do, asked of its own ServiceAccount.
FORBIDDEN = [
    ("delete", "", "secrets", ""),
    ("list", "", "secrets", ""),
    ("watch", "", "secrets", ""),
    ("patch", "kappa.dev", "materializedviews", ""),  # the main resource: spec, labels, annotations
    ("update", "kappa.dev", "replayruns", ""),
    ("update", "kappa.dev", "streamjobs/status", ""),
    ("delete", "kappa.dev", "materializedviews", ""),
    ("create", "kafka.strimzi.io", "kafkausers", ""),
    ("create", "events.k8s.io", "events", ""),
    ("create", "", "pods", ""),
    ("create", "", "pods", "exec"),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", ""),
]


def test_the_operator_may_not_do_more(operator_kubeconfig: Path, world: tuple[World, Roles]) -> None:
    w, _ = world
    authz = client.AuthorizationV1Api(config.new_client_from_config(config_file=str(operator_kubeconfig)))
    allowed = []
    for verb, group, path, sub in FORBIDDEN:
        resource, _, subresource = path.partition("/")
        attributes = client.V1ResourceAttributes(
            namespace=w.namespace, verb=verb, group=group, resource=resource, subresource=sub or subresource
        )
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        )
        if authz.create_self_subject_access_review(review).status.allowed:
            allowed.append((verb, group, path, sub))
    assert not allowed, f"the operator may {allowed}"


def can_i(kubectl: Kubectl, verb: str, group: str, resource: str, subresource: str) -> bool:
    """A SelfSubjectAccessReview through kubectl (test_two_replicas asks the election's verbs with it)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": kubectl.namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
                "subresource": subresource,
            }
        },
    }
    out = kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review))
    return bool(json.loads(out)["status"].get("allowed"))


@pytest.fixture
def as_operator(operator_kubeconfig: Path, namespace: str) -> Kubectl:
    return Kubectl(operator_kubeconfig, namespace)


def test_deleting_a_secret_as_the_operator_is_forbidden(kubectl: Kubectl, as_operator: Kubectl) -> None:
    kubectl("create", "secret", "generic", "sessions-db", "--from-literal=uri=postgresql://x")
    result = as_operator.run("delete", "secret", "sessions-db", check=False)
    assert result.returncode != 0
    assert "Forbidden" in result.stderr and 'cannot delete resource "secrets"' in result.stderr
    assert kubectl("get", "secret", "sessions-db", "-o", "name").strip() == "secret/sessions-db"


def test_writing_a_spec_as_the_operator_is_forbidden(kubectl: Kubectl, as_operator: Kubectl) -> None:
    kubectl.apply(ROOT / "examples" / "02-materializedview-sessions.yaml")
    result = as_operator.run(
        "patch", "mv", "sessions", "--type=merge", "-p", '{"spec":{"retainVersions":5}}', check=False
    )
    assert result.returncode != 0 and "Forbidden" in result.stderr
    assert kubectl.get("mv", "sessions")["spec"]["retainVersions"] == 2
