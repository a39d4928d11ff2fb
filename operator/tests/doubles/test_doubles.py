"""The doubles behave as the real FKO 1.10 and Strimzi 1.2 topic operator do, against the real API server and
the real test Kafka: these test the test tooling, so the operator's tests can trust what the doubles write."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kubernetes import client

from tests.doubles.double import wait_until
from tests.doubles.fixtures import UpstreamCrds
from tests.doubles.fko import FLINK_DEPLOYMENTS, FakeFlinkOperator
from tests.doubles.kube_watch import Obj, Resource, api_client
from tests.doubles.strimzi import FINALIZER, KAFKA_TOPICS, FakeTopicOperator


class Kube:
    """The API server as a test (a user, or the operator under test) uses it."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        apis = api_client(kubeconfig)
        self.custom = client.CustomObjectsApi(apis)
        self.core = client.CoreV1Api(apis)
        self.namespace = namespace

    def create(self, r: Resource, name: str, spec: dict[str, Any], **metadata: Any) -> Obj:
        body = {
            "apiVersion": r.api_version,
            "kind": r.kind,
            "metadata": {"name": name, **metadata},
            "spec": spec,
        }
        created = self.custom.create_namespaced_custom_object(
            r.group, r.version, self.namespace, r.plural, body
        )
        return cast(Obj, created)

    def get(self, r: Resource, name: str) -> Obj:
        got = self.custom.get_namespaced_custom_object(r.group, r.version, self.namespace, r.plural, name)
        return cast(Obj, got)

    def patch_spec(self, r: Resource, name: str, spec: dict[str, Any]) -> Obj:
        patched = self.custom.patch_namespaced_custom_object(
            r.group,
            r.version,
            self.namespace,
            r.plural,
            name,
            {"spec": spec},
            _content_type="application/merge-patch+json",
        )
        return cast(Obj, patched)

    def delete(self, r: Resource, name: str) -> None:
        self.custom.delete_namespaced_custom_object(r.group, r.version, self.namespace, r.plural, name)

    def exists(self, r: Resource, name: str) -> bool:
        try:
            self.get(r, name)
        except client.ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events about `name`, in no particular order (their timestamps
        count whole seconds)."""
        listed = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        return [(e.type or "", e.reason or "", e.message or "") for e in listed.items]


@pytest.fixture
def kube(control_plane: Path, namespace: str) -> Kube:
    return Kube(control_plane, namespace)


@pytest.fixture(scope="module")
def kafka(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


# --- FKO ---------------------------------------------------------------------------------------------------


REPORTS_CHECKPOINTS = {
    "kubernetes.operator.snapshot.resource.enabled": "false",
    "kubernetes.operator.periodic.checkpoint.interval": "1 s",
}
"""What makes the real FKO trigger checkpoints and record them in checkpointInfo (kappa.machines.fko)."""


def flink_spec(configuration: dict[str, str] | None = None, **job: Any) -> dict[str, Any]:
    """A FlinkDeployment spec the real CRD accepts (flinkVersion v1_20: the 1.10 enum ends there)."""
    return {
        "image": "flink:1.20",
        "flinkVersion": "v1_20",
        "serviceAccount": "flink",
        "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2", **(configuration or {})},
        "jobManager": {"resource": {"memory": "1024m", "cpu": 1}},
        "taskManager": {"resource": {"memory": "1024m", "cpu": 1}},
        "job": {"jarURI": "local:///opt/flink/job.jar", "parallelism": 2, "upgradeMode": "savepoint", **job},
    }


def fd_status(kube: Kube, name: str) -> dict[str, Any]:
    return kube.get(FLINK_DEPLOYMENTS, name).get("status") or {}


def lifecycle_is(kube: Kube, name: str, state: str) -> bool:
    return fd_status(kube, name).get("lifecycleState") == state


def test_a_running_deployment_is_deployed_then_running_stable_and_checkpointing(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    created = kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(REPORTS_CHECKPOINTS, state="running"))

    wait_until(lambda: lifecycle_is(kube, "orders-v1", "STABLE"), what="STABLE")
    status = fd_status(kube, "orders-v1")
    job = status["jobStatus"]
    assert status["jobManagerDeploymentStatus"] == "READY"
    assert job["state"] == "RUNNING"
    assert re.fullmatch(r"[0-9a-f]{32}", job["jobId"])
    assert job["startTime"].isdigit() and job["updateTime"].isdigit()
    assert status["observedGeneration"] == created["metadata"]["generation"]
    reconciled = status["reconciliationStatus"]
    assert reconciled["state"] == "DEPLOYED"
    assert json.loads(reconciled["lastReconciledSpec"]) == {
        "spec": created["spec"],
        "resource_metadata": {"apiVersion": "flink.apache.org/v1beta1", "firstDeployment": True},
    }
    assert reconciled["lastStableSpec"] == reconciled["lastReconciledSpec"]
    assert status["taskManager"] == {"labelSelector": "component=taskmanager,app=orders-v1", "replicas": 1}
    assert "error" not in status
    assert fko.restored_from(namespace, "orders-v1") is None

    # The checkpoints FKO triggers keep moving lastCheckpoint.timeStamp on, each after the job's start.
    first = wait_until(lambda: job_checkpoint(kube, "orders-v1"), what="a first checkpoint")
    assert first > int(job["startTime"])
    wait_until(lambda: (job_checkpoint(kube, "orders-v1") or 0) > first, what="a later checkpoint")

    running = ("Normal", "JobStatusChanged", "Job status changed from RECONCILING to RUNNING")
    wait_until(lambda: running in kube.events("orders-v1"), what=f"the event {running}")


def job_checkpoint(kube: Kube, name: str) -> int | None:
    info = fd_status(kube, name).get("jobStatus", {}).get("checkpointInfo", {})
    last = info.get("lastCheckpoint")
    if last:
        assert last["triggerType"] == "PERIODIC"
        assert info["lastPeriodicCheckpointTimestamp"] == last["timeStamp"]
    return last["timeStamp"] if last else None


@pytest.mark.parametrize(
    ("configuration", "flink_version"),
    [
        ({}, "v1_20"),  # FKO's defaults: no periodic trigger
        (
            {"kubernetes.operator.periodic.checkpoint.interval": "1 s"},
            "v1_20",
        ),  # FlinkStateSnapshot resources
        ({**REPORTS_CHECKPOINTS, "kubernetes.operator.periodic.checkpoint.interval": "0"}, "v1_20"),
        (REPORTS_CHECKPOINTS, "v1_16"),  # FKO triggers checkpoints only on Flink 1.17+
    ],
)
def test_flinks_own_checkpoints_never_reach_status(
    fko: FakeFlinkOperator, kube: Kube, namespace: str, configuration: dict[str, str], flink_version: str
) -> None:
    kube.create(
        FLINK_DEPLOYMENTS,
        "orders-v1",
        {**flink_spec(configuration, state="running"), "flinkVersion": flink_version},
    )
    wait_until(lambda: fko.checkpoints(namespace, "orders-v1") >= 5, what="five checkpoints in Flink")
    time.sleep(1.5)  # past the 1 s interval, which FKO counts from creationTimestamp (whole seconds)
    info = fd_status(kube, "orders-v1")["jobStatus"]["checkpointInfo"]
    assert info == {"lastPeriodicCheckpointTimestamp": 0}


def test_a_blank_checkpoint_interval_stops_the_triggers_without_touching_the_job(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    """FKO ignores a change of `kubernetes.operator.*` keys when it decides on an upgrade (DiffType.IGNORE)
    and reads the interval from the current spec: the operator's way to stop asking at rest."""
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(REPORTS_CHECKPOINTS, state="running"))
    wait_until(lambda: job_checkpoint(kube, "orders-v1"), what="a first checkpoint")
    started = fd_status(kube, "orders-v1")["jobStatus"]["startTime"]

    interval = "kubernetes.operator.periodic.checkpoint.interval"
    quiet = kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"flinkConfiguration": {interval: ""}})
    generation = quiet["metadata"]["generation"]
    wait_until(
        lambda: fd_status(kube, "orders-v1")["observedGeneration"] == generation, what="the change observed"
    )
    wait_until(lambda: not _checkpoint_pending(kube), what="no checkpoint in flight")
    last = job_checkpoint(kube, "orders-v1")
    time.sleep(3)  # three intervals of the 1 s asked before
    status = fd_status(kube, "orders-v1")
    assert job_checkpoint(kube, "orders-v1") == last, "FKO triggered a checkpoint with a blank interval"
    assert status["jobStatus"]["startTime"] == started and status["jobStatus"]["state"] == "RUNNING"
    assert fko.runs(namespace, "orders-v1") == [None], "the job was redeployed"
    # lastReconciledSpec keeps the deployed spec (updateReconciliationMetadata), with the interval asked then.
    reconciled = json.loads(status["reconciliationStatus"]["lastReconciledSpec"])["spec"]
    assert reconciled["flinkConfiguration"][interval] == "1 s"

    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"flinkConfiguration": {interval: "1 s"}})
    wait_until(lambda: (job_checkpoint(kube, "orders-v1") or 0) > (last or 0), what="checkpoints again")
    assert fko.runs(namespace, "orders-v1") == [None]


def _checkpoint_pending(kube: Kube) -> bool:
    info = fd_status(kube, "orders-v1").get("jobStatus", {}).get("checkpointInfo", {})
    return bool(info.get("triggerId"))


def test_a_checkpoint_fko_triggers_for_a_job_that_never_checkpoints_fails(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    fko.never_checkpoint("orders-v1")
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(REPORTS_CHECKPOINTS, state="running"))
    pending = wait_until(
        lambda: fd_status(kube, "orders-v1").get("jobStatus", {}).get("checkpointInfo", {}).get("triggerId"),
        what="a triggered checkpoint",
    )
    info = fd_status(kube, "orders-v1")["jobStatus"]["checkpointInfo"]
    assert (info["triggerType"], info["formatType"]) == ("PERIODIC", "FULL")
    failed = ("Warning", "CheckpointError", "Periodic checkpoint failed")
    wait_until(lambda: failed in kube.events("orders-v1"), what=f"the event {failed}")
    info = fd_status(kube, "orders-v1")["jobStatus"]["checkpointInfo"]
    assert "lastCheckpoint" not in info and info.get("triggerId") != pending

    fko.never_checkpoint("orders-v1", False)
    wait_until(lambda: job_checkpoint(kube, "orders-v1"), what="a checkpoint once Flink completes them")


def test_suspend_takes_a_savepoint_and_resuming_restores_from_it(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))
    wait_until(lambda: fko.state(namespace, "orders-v1") == "RUNNING")

    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "suspended"}})

    wait_until(lambda: lifecycle_is(kube, "orders-v1", "SUSPENDED"), what="SUSPENDED")
    status = fd_status(kube, "orders-v1")
    job = status["jobStatus"]
    [savepoint] = fko.savepoints(namespace, "orders-v1")
    assert savepoint == f"file:///savepoints/{namespace}/orders-v1/savepoint-1"
    assert job["state"] == "FINISHED"
    assert job["upgradeSavepointPath"] == savepoint
    assert job["savepointInfo"]["lastSavepoint"]["location"] == savepoint
    assert job["savepointInfo"]["lastSavepoint"]["triggerType"] == "UPGRADE"
    assert [s["location"] for s in job["savepointInfo"]["savepointHistory"]] == [savepoint]
    assert status["jobManagerDeploymentStatus"] == "MISSING"
    assert status["observedGeneration"] == 2

    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "running"}})

    wait_until(lambda: lifecycle_is(kube, "orders-v1", "STABLE"), what="STABLE again")
    assert fd_status(kube, "orders-v1")["jobStatus"]["state"] == "RUNNING"
    assert fko.restored_from(namespace, "orders-v1") == savepoint
    assert fko.runs(namespace, "orders-v1") == [None, savepoint]


def test_stateless_suspend_takes_no_savepoint_and_resumes_without_state(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running", upgradeMode="stateless"))
    wait_until(lambda: fko.state(namespace, "orders-v1") == "RUNNING")

    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "suspended"}})
    wait_until(lambda: lifecycle_is(kube, "orders-v1", "SUSPENDED"))
    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "running"}})
    wait_until(
        lambda: fko.state(namespace, "orders-v1") == "RUNNING" and len(fko.runs(namespace, "orders-v1")) == 2
    )

    assert fko.savepoints(namespace, "orders-v1") == []
    assert "upgradeSavepointPath" not in fd_status(kube, "orders-v1")["jobStatus"]
    assert fko.runs(namespace, "orders-v1") == [None, None]


def test_last_state_suspend_resumes_from_the_last_checkpoint(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running", upgradeMode="last-state"))
    wait_until(lambda: fko.checkpoints(namespace, "orders-v1") >= 1)

    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "suspended"}})
    wait_until(lambda: lifecycle_is(kube, "orders-v1", "SUSPENDED"))
    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "running"}})
    wait_until(lambda: len(fko.runs(namespace, "orders-v1")) == 2)

    assert fko.savepoints(namespace, "orders-v1") == []
    restored = fko.restored_from(namespace, "orders-v1") or ""
    assert re.fullmatch(rf"file:///checkpoints/{namespace}/orders-v1/[0-9a-f]{{32}}/chk-\d+", restored)


def test_initial_savepoint_path_counts_on_first_deploy_and_with_a_new_redeploy_nonce_only(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    kube.create(
        FLINK_DEPLOYMENTS, "orders-v2", flink_spec(state="running", initialSavepointPath="file:///sp/v1")
    )
    wait_until(lambda: fko.state(namespace, "orders-v2") == "RUNNING")
    assert fko.restored_from(namespace, "orders-v2") == "file:///sp/v1"

    # Any other change to a running job is an upgrade: savepoint, then restore from it, not from the path.
    kube.patch_spec(
        FLINK_DEPLOYMENTS, "orders-v2", {"job": {"parallelism": 4, "initialSavepointPath": "file:///x"}}
    )
    wait_until(
        lambda: len(fko.runs(namespace, "orders-v2")) == 2 and fko.state(namespace, "orders-v2") == "RUNNING"
    )
    [upgrade] = fko.savepoints(namespace, "orders-v2")
    assert fko.restored_from(namespace, "orders-v2") == upgrade

    # A new savepointRedeployNonce redeploys from initialSavepointPath, without taking a savepoint.
    kube.patch_spec(
        FLINK_DEPLOYMENTS,
        "orders-v2",
        {"job": {"savepointRedeployNonce": 1, "initialSavepointPath": "file:///sp/b"}},
    )
    wait_until(
        lambda: len(fko.runs(namespace, "orders-v2")) == 3 and fko.state(namespace, "orders-v2") == "RUNNING"
    )
    assert fko.restored_from(namespace, "orders-v2") == "file:///sp/b"
    assert fko.savepoints(namespace, "orders-v2") == [upgrade]
    wait_until(lambda: lifecycle_is(kube, "orders-v2", "STABLE"))
    assert fd_status(kube, "orders-v2")["observedGeneration"] == 3


def test_a_failed_savepoint_leaves_the_job_running_with_the_error(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))
    wait_until(lambda: lifecycle_is(kube, "orders-v1", "STABLE"))
    fko.savepoint_fails("orders-v1")

    kube.patch_spec(FLINK_DEPLOYMENTS, "orders-v1", {"job": {"state": "suspended"}})

    status = wait_until(lambda: (s := fd_status(kube, "orders-v1")).get("error") and s, what="an error")
    error = json.loads(status["error"])
    assert error["type"] == "org.apache.flink.kubernetes.operator.exception.UpgradeFailureException"
    assert error["message"] == "Savepoint Error"
    assert error["throwableList"][0]["type"] == "java.util.concurrent.ExecutionException"
    assert status["jobStatus"]["state"] == "RUNNING"
    assert status["lifecycleState"] == "STABLE"
    assert status["observedGeneration"] == 1  # the suspend was never reconciled
    assert "upgradeSavepointPath" not in status["jobStatus"]
    assert fko.savepoints(namespace, "orders-v1") == []
    wait_until(lambda: ("Warning", "SavepointError", "Savepoint Error") in kube.events("orders-v1"))

    fko.savepoint_fails("orders-v1", False)

    wait_until(lambda: lifecycle_is(kube, "orders-v1", "SUSPENDED"), what="the retried suspend")
    assert "error" not in fd_status(kube, "orders-v1")
    assert len(fko.savepoints(namespace, "orders-v1")) == 1


def test_a_crash_loop_shows_as_restarting_state_changes_and_events(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    fko.crash_loop("orders-v1", every=0.2, restart_delay=0.1)
    seen: set[str] = set()

    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))

    def restarted_three_times() -> bool:
        seen.add(fd_status(kube, "orders-v1").get("jobStatus", {}).get("state", ""))
        return fko.restarts(namespace, "orders-v1") >= 3

    wait_until(restarted_three_times, interval=0.02, what="three restarts")
    assert {"RUNNING", "RESTARTING"} <= seen
    restarting = "Job status changed from RUNNING to RESTARTING"
    wait_until(lambda: sum(e[2] == restarting for e in kube.events("orders-v1")) >= 3, what="3 such events")
    status = fd_status(kube, "orders-v1")
    assert "error" not in status  # FKO sets error only when the job ends FAILED
    assert status["lifecycleState"] == "STABLE"  # stable since first seen RUNNING, as FKO has it

    fko.crash_loop("orders-v1", False)
    wait_until(lambda: fko.state(namespace, "orders-v1") == "RUNNING")
    settled = fko.restarts(namespace, "orders-v1")
    time.sleep(0.5)
    assert fko.restarts(namespace, "orders-v1") == settled
    assert fko.state(namespace, "orders-v1") == "RUNNING"


def test_a_crash_loop_that_exhausts_its_restarts_fails_the_job(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    fko.crash_loop("orders-v1", every=0.1, restart_delay=0.1, fail_after=1)

    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))

    wait_until(lambda: lifecycle_is(kube, "orders-v1", "FAILED"), what="FAILED")
    status = fd_status(kube, "orders-v1")
    assert status["jobStatus"]["state"] == "FAILED"
    error = json.loads(status["error"])
    assert error["type"] == "org.apache.flink.util.SerializedThrowable"
    assert "Recovery is suppressed" in error["message"]
    assert fko.restarts(namespace, "orders-v1") == 1
    wanted = {"Job status changed from RUNNING to FAILING", "Job status changed from FAILING to FAILED"}
    wait_until(lambda: wanted <= {e[2] for e in kube.events("orders-v1")}, what=f"events {wanted}")


def test_a_deployment_that_never_checkpoints(fko: FakeFlinkOperator, kube: Kube, namespace: str) -> None:
    fko.never_checkpoint("quiet")
    kube.create(FLINK_DEPLOYMENTS, "quiet", flink_spec(state="running"))
    kube.create(FLINK_DEPLOYMENTS, "busy", flink_spec(state="running"))

    wait_until(lambda: fko.checkpoints(namespace, "busy") >= 2, what="two checkpoints of the other job")

    assert fko.state(namespace, "quiet") == "RUNNING"
    assert fko.checkpoints(namespace, "quiet") == 0
    assert "lastCheckpoint" not in fd_status(kube, "quiet")["jobStatus"]["checkpointInfo"]


def test_a_jobmanager_that_cannot_start_is_an_error_not_a_failed_lifecycle(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    fko.deploy_fails("orders-v1", reason="ImagePullBackOff")

    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))

    status = wait_until(
        lambda: (s := fd_status(kube, "orders-v1")).get("jobManagerDeploymentStatus") == "ERROR" and s
    )
    assert status["jobStatus"]["state"] == "RECONCILING"
    assert status["lifecycleState"] == "DEPLOYED"
    error = json.loads(status["error"])
    assert error["type"] == "org.apache.flink.kubernetes.operator.exception.DeploymentFailedException"
    assert error["additionalMetadata"] == {"reason": "ImagePullBackOff"}
    wait_until(lambda: any(e[:2] == ("Warning", "ImagePullBackOff") for e in kube.events("orders-v1")))

    fko.deploy_fails("orders-v1", False)

    wait_until(lambda: lifecycle_is(kube, "orders-v1", "STABLE"), what="recovery once the image pulls")
    assert "error" not in fd_status(kube, "orders-v1")


def test_deleted_and_recreated_deployments_are_tolerated(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    fko.start_delay("orders-v1", 0.5)
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))
    wait_until(lambda: fko.state(namespace, "orders-v1") == "RECONCILING")

    kube.delete(FLINK_DEPLOYMENTS, "orders-v1")
    kube.create(
        FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running", initialSavepointPath="file:///sp/2")
    )

    wait_until(lambda: fko.state(namespace, "orders-v1") == "RUNNING")
    assert fko.runs(namespace, "orders-v1") == ["file:///sp/2"]
    assert not fko.errors


def test_the_watch_recovers_from_410_gone(fko: FakeFlinkOperator, kube: Kube, namespace: str) -> None:
    lists = fko.watcher.lists

    fko.watcher.interrupt(resume_from="1")  # long compacted: the API server answers 410 Gone

    wait_until(lambda: fko.watcher.lists > lists, what="a fresh list")
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))
    wait_until(lambda: fko.state(namespace, "orders-v1") == "RUNNING", what="the double to see new objects")


def test_scripts_reach_only_their_namespace_when_given_one(
    fko: FakeFlinkOperator, kube: Kube, namespace: str
) -> None:
    fko.deploy_fails("orders-v1", namespace="elsewhere")
    kube.create(FLINK_DEPLOYMENTS, "orders-v1", flink_spec(state="running"))
    wait_until(lambda: fko.state(namespace, "orders-v1") == "RUNNING")


def test_doubles_start_and_stop_promptly(
    control_plane: Path, upstream_crds: UpstreamCrds, kafka_bootstrap: str
) -> None:
    for double in (
        FakeFlinkOperator(control_plane, namespaces=()),
        FakeTopicOperator(control_plane, kafka_bootstrap, namespaces=()),
    ):
        started = time.monotonic()
        double.start()
        time.sleep(0.2)  # into the blocking watch read
        stopping = time.monotonic()
        double.stop()
        assert time.monotonic() - stopping < 1.5, type(double).__name__
        assert time.monotonic() - started < 5
        assert not double.running


# --- Strimzi -----------------------------------------------------------------------------------------------

LABELS = {"strimzi.io/cluster": "kafka"}


def unique_topic() -> str:
    return f"dbl.{uuid.uuid4().hex[:10]}"


def kt_status(kube: Kube, name: str) -> dict[str, Any]:
    return kube.get(KAFKA_TOPICS, name).get("status") or {}


def ready_condition(kube: Kube, name: str, generation: int = 1) -> dict[str, Any] | None:
    """The Ready condition, once the status is of `generation`."""
    status = kt_status(kube, name)
    if status.get("observedGeneration") != generation:
        return None
    [condition] = status["conditions"]
    return condition if condition["type"] == "Ready" else None


def topic_configs(kafka: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = kafka.describe_configs([resource])[resource].result(10)
    dynamic = ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    return {k: e.value for k, e in entries.items() if e.source == dynamic}


def partitions(kafka: AdminClient, topic: str) -> int | None:
    metadata = kafka.list_topics(topic, timeout=10).topics.get(topic)
    return len(metadata.partitions) if metadata and not metadata.error else None


def topic_exists(kafka: AdminClient, topic: str) -> bool:
    return topic in kafka.list_topics(timeout=10).topics


def test_a_kafka_topic_becomes_a_real_topic_with_strimzi_status(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient, namespace: str
) -> None:
    topic = unique_topic()
    spec = {"topicName": topic, "partitions": 3, "replicas": 1, "config": {"retention.ms": 3600000}}

    kube.create(KAFKA_TOPICS, "orders", spec, labels=LABELS)

    condition = wait_until(lambda: ready_condition(kube, "orders"), what="a Ready condition")
    assert condition["status"] == "True"
    assert "reason" not in condition
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", condition["lastTransitionTime"])
    status = kt_status(kube, "orders")
    assert status["topicName"] == topic
    described = kafka.describe_topics(TopicCollection([topic]))[topic].result(10)
    assert status["topicId"] == str(described.topic_id).replace("+", "-").replace("/", "_")
    assert partitions(kafka, topic) == 3
    assert topic_configs(kafka, topic) == {"retention.ms": "3600000"}
    assert strimzi.ready(namespace, "orders")


def test_the_topic_name_defaults_to_the_resource_name(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    name = f"dbl-{uuid.uuid4().hex[:10]}"
    kube.create(KAFKA_TOPICS, name, {"partitions": 1}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, name))
    assert kt_status(kube, name)["topicName"] == name
    assert partitions(kafka, name) == 1


def test_kafka_topics_without_the_cluster_label_are_ignored(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    ignored, seen = unique_topic(), unique_topic()
    kube.create(KAFKA_TOPICS, "unlabelled", {"topicName": ignored, "partitions": 1})
    kube.create(KAFKA_TOPICS, "labelled", {"topicName": seen, "partitions": 1}, labels=LABELS)

    wait_until(lambda: ready_condition(kube, "labelled"))

    assert "status" not in kube.get(KAFKA_TOPICS, "unlabelled")
    assert not topic_exists(kafka, ignored)


def test_config_changes_are_applied_incrementally_and_partitions_grow(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()
    config = {"retention.ms": 3600000, "cleanup.policy": "delete"}
    kube.create(
        KAFKA_TOPICS, "orders", {"topicName": topic, "partitions": 2, "config": config}, labels=LABELS
    )
    wait_until(lambda: ready_condition(kube, "orders"))

    kube.custom.patch_namespaced_custom_object(
        KAFKA_TOPICS.group,
        KAFKA_TOPICS.version,
        kube.namespace,
        KAFKA_TOPICS.plural,
        "orders",
        [
            {"op": "replace", "path": "/spec/partitions", "value": 4},
            {
                "op": "replace",
                "path": "/spec/config",
                "value": {"retention.ms": 7200000, "segment.ms": 600000},
            },
        ],
        _content_type="application/json-patch+json",
    )

    condition = wait_until(lambda: ready_condition(kube, "orders", generation=2))
    assert condition["status"] == "True"
    assert partitions(kafka, topic) == 4
    want = {"retention.ms": "7200000", "segment.ms": "600000"}  # cleanup.policy is back to the broker's
    wait_until(lambda: topic_configs(kafka, topic) == want, what=f"Kafka's config to become {want}")


def test_decreasing_partitions_is_not_supported(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()
    kube.create(KAFKA_TOPICS, "orders", {"topicName": topic, "partitions": 3}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, "orders"))

    kube.patch_spec(KAFKA_TOPICS, "orders", {"partitions": 1})

    condition = wait_until(lambda: ready_condition(kube, "orders", generation=2))
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "NotSupported",
        "Decreasing partitions not supported",
    )
    assert partitions(kafka, topic) == 3


def test_an_invalid_config_is_a_kafka_error(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()

    kube.create(
        KAFKA_TOPICS, "orders", {"topicName": topic, "config": {"retention.ms": "soon"}}, labels=LABELS
    )

    condition = wait_until(lambda: ready_condition(kube, "orders"))
    assert (condition["status"], condition["reason"]) == ("False", "KafkaError")
    assert condition["message"] == (
        "org.apache.kafka.common.errors.InvalidConfigurationException: "
        "Invalid value soon for configuration retention.ms: Not a number of type LONG"
    )
    assert not topic_exists(kafka, topic)


def test_an_unmanaged_kafka_topic_is_left_alone(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()

    kube.create(
        KAFKA_TOPICS,
        "orders",
        {"topicName": topic},
        labels=LABELS,
        annotations={"strimzi.io/managed": "false"},
    )

    condition = wait_until(lambda: ready_condition(kube, "orders"))
    assert condition["status"] == "True"
    assert "topicName" not in kt_status(kube, "orders")
    assert not topic_exists(kafka, topic)


def test_changing_replicas_without_cruise_control_is_not_supported(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()
    kube.create(KAFKA_TOPICS, "orders", {"topicName": topic, "partitions": 2, "replicas": 1}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, "orders"))

    kube.patch_spec(KAFKA_TOPICS, "orders", {"replicas": 2})

    condition = wait_until(lambda: ready_condition(kube, "orders", generation=2))
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "NotSupported",
        "Replication factor change not supported, but required for partitions [0, 1]",
    )


def test_a_paused_kafka_topic_is_not_reconciled(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()

    kube.create(
        KAFKA_TOPICS,
        "orders",
        {"topicName": topic},
        labels=LABELS,
        annotations={"strimzi.io/pause-reconciliation": "true"},
    )

    status = wait_until(lambda: kt_status(kube, "orders"), what="a status")
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [("ReconciliationPaused", "True")]
    assert status["observedGeneration"] == 0
    assert not topic_exists(kafka, topic)


def test_a_scripted_failure_holds_until_healed_and_a_delay_slows_reconciling(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient, namespace: str
) -> None:
    topic = unique_topic()
    strimzi.fail("orders", "KafkaError", "org.apache.kafka.common.errors.TimeoutException: Timed out")
    kube.create(KAFKA_TOPICS, "orders", {"topicName": topic}, labels=LABELS)

    condition = wait_until(lambda: ready_condition(kube, "orders"))
    assert (condition["status"], condition["reason"]) == ("False", "KafkaError")
    assert condition["message"] == "org.apache.kafka.common.errors.TimeoutException: Timed out"
    assert not topic_exists(kafka, topic)

    strimzi.delay(0.5)
    healed = time.monotonic()
    strimzi.heal("orders")

    wait_until(lambda: strimzi.ready(namespace, "orders"))
    assert time.monotonic() - healed >= 0.5
    assert topic_exists(kafka, topic)


def test_a_second_kafka_topic_for_the_same_topic_is_a_conflict(
    strimzi: FakeTopicOperator, kube: Kube
) -> None:
    topic = unique_topic()
    kube.create(KAFKA_TOPICS, "first", {"topicName": topic}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, "first"))

    kube.create(KAFKA_TOPICS, "second", {"topicName": topic}, labels=LABELS)

    condition = wait_until(lambda: ready_condition(kube, "second"))
    assert (condition["status"], condition["reason"]) == ("False", "ResourceConflict")
    assert condition["message"] == f"Managed by Ref{{namespace='{kube.namespace}', name='first'}}"


def test_deleting_a_kafka_topic_deletes_its_topic(
    strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()
    kube.create(KAFKA_TOPICS, "orders", {"topicName": topic}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, "orders"))

    kube.delete(KAFKA_TOPICS, "orders")

    wait_until(lambda: not topic_exists(kafka, topic), what="the topic to go")


@pytest.fixture
def finalizing_strimzi(
    control_plane: Path, upstream_crds: UpstreamCrds, kafka_bootstrap: str, namespace: str
) -> Iterator[FakeTopicOperator]:
    with FakeTopicOperator(
        control_plane, kafka_bootstrap, namespaces=[namespace], use_finalizers=True
    ) as double:
        yield double


def test_with_finalizers_the_topic_goes_first_and_stop_lets_go_of_them(
    finalizing_strimzi: FakeTopicOperator, kube: Kube, kafka: AdminClient
) -> None:
    topic = unique_topic()
    kube.create(KAFKA_TOPICS, "orders", {"topicName": topic}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, "orders"))
    assert kube.get(KAFKA_TOPICS, "orders")["metadata"]["finalizers"] == [FINALIZER]

    kube.delete(KAFKA_TOPICS, "orders")

    wait_until(lambda: not kube.exists(KAFKA_TOPICS, "orders"), what="the KafkaTopic to go")
    assert not topic_exists(kafka, topic)

    kept = unique_topic()
    kube.create(KAFKA_TOPICS, "kept", {"topicName": kept}, labels=LABELS)
    wait_until(lambda: ready_condition(kube, "kept"))
    finalizing_strimzi.stop()
    assert not kube.get(KAFKA_TOPICS, "kept")["metadata"].get("finalizers")
    assert not finalizing_strimzi.errors
    kafka.delete_topics([kept])[kept].result(10)  # nothing deletes it now: the double is gone
