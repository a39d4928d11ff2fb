"""StreamJob user stories: a version is a FlinkDeployment and a KafkaTopic; upgrades go through a savepoint,
and a version that is not healthy is rolled back to the recorded savepoint.

FKO and the Strimzi topic operator are played by the doubles in tests/doubles (they need kubelets).
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import pytest

from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.strimzi import FakeTopicOperator
from tests.integration.testbed import Kubectl, OperatorProcess, conditions

READINESS = 15  # seconds, spec.upgrade.readinessTimeout below
WINDOW = 8  # seconds, spec.upgrade.rollbackWindow below


def streamjob(version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "sessionizer"},
        "spec": {
            "version": version,
            "source": {"kafka": {"clusterRef": "events"}, "topics": ["clicks"]},
            "output": {"topic": {"base": "sessions", "partitions": 2}},
            "flink": {
                "image": "kappa-dev/flink-sql-runner:1.20",
                "flinkVersion": "v1_20",  # FKO 1.10's CRD stops at v1_20
                "sql": ["INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks /* ${KAPPA_GROUP_ID} */"],
            },
            "upgrade": {
                "readinessTimeout": f"{READINESS}s",
                "savepointTimeout": "20s",
                "maxRestarts": 2,
                "stableFor": "4s",
                "rollbackWindow": f"{WINDOW}s",
            },
        },
    }


def wait(kubectl: Kubectl, what: str, predicate: Any, timeout: float = 60) -> dict[str, Any]:
    return kubectl.wait_for("sj", "sessionizer", predicate, timeout=timeout, what=what)


def ready(obj: dict[str, Any]) -> bool:
    cond = conditions(obj).get("Ready", {})
    return cond.get("status") == "True" and cond.get("observedGeneration") == obj["metadata"]["generation"]


def flinkdeployments(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    out = json.loads(kubectl("get", "flinkdeployments", "-l", "kappa.dev/job=sessionizer", "-o", "json"))
    return {fd["metadata"]["name"]: fd for fd in out["items"]}


def event_time(kubectl: Kubectl, reason: str) -> datetime:
    out = json.loads(
        kubectl(
            "get",
            "events",
            "--field-selector",
            f"involvedObject.name=sessionizer,reason={reason}",
            "-o",
            "json",
        )
    )
    stamp = out["items"][0].get("firstTimestamp") or out["items"][0]["eventTime"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def events(kubectl: Kubectl) -> list[str]:
    out = json.loads(
        kubectl("get", "events", "--field-selector", "involvedObject.name=sessionizer", "-o", "json")
    )
    return [e["reason"] for e in out["items"]]


@pytest.fixture
def live_v1(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, strimzi: FakeTopicOperator
) -> dict[str, Any]:
    kubectl.apply(streamjob("v1"))
    return wait(kubectl, "v1 Ready", ready)


def test_a_version_is_one_flinkdeployment_and_one_kafkatopic_with_injected_names(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    ns = str(kubectl.namespace)
    fds = flinkdeployments(kubectl)
    assert list(fds) == ["sessionizer-v1"]
    job = fds["sessionizer-v1"]["spec"]["job"]
    assert job["upgradeMode"] == "savepoint"
    assert "INSERT INTO `sessions.v1`" in job["args"][0]
    assert f"/* {ns}.sessionizer.v1 */" in job["args"][0]
    config = fds["sessionizer-v1"]["spec"]["flinkConfiguration"]
    assert config["kappa.group-id"] == f"{ns}.sessionizer.v1"
    assert config["kappa.transactional-id-prefix"] == f"{ns}.sessionizer.v1"
    topics = json.loads(kubectl("get", "kafkatopics", "-l", "kappa.dev/job=sessionizer", "-o", "json"))[
        "items"
    ]
    assert [t["spec"]["topicName"] for t in topics] == ["sessions.v1"]
    assert topics[0]["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    assert live_v1["status"]["activeVersion"] == "v1"
    assert live_v1["status"]["phase"] == "Running"
    row = kubectl("get", "sj", "sessionizer", "--no-headers").split()
    assert row[1:4] == ["v1", "v1", "Running"]
    assert fko.checkpoints(ns, "sessionizer-v1") >= 1  # Ready came after a checkpoint


def test_upgrade_v1_to_v2_starts_v2_from_v1s_savepoint(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    ns = str(kubectl.namespace)
    kubectl.apply(streamjob("v2"))
    done = wait(kubectl, "v2 active", lambda o: ready(o) and o["status"].get("activeVersion") == "v2")

    savepoint = fko.savepoints(ns, "sessionizer-v1")[-1]
    assert fko.restored_from(ns, "sessionizer-v2") == savepoint
    assert [s["path"] for s in done["status"]["savepoints"]] == [savepoint]
    fds = flinkdeployments(kubectl)
    assert fds["sessionizer-v1"]["spec"]["job"]["state"] == "suspended"
    v2 = fds["sessionizer-v2"]["spec"]
    assert v2["flinkConfiguration"]["kappa.group-id"] == f"{ns}.sessionizer.v2"
    assert v2["flinkConfiguration"]["kappa.transactional-id-prefix"] == f"{ns}.sessionizer.v2"
    outcomes = [(h["version"], h["outcome"]) for h in done["status"]["history"]]
    assert ("v1", "Active") in outcomes and ("v2", "Active") in outcomes and ("v1", "Superseded") in outcomes
    assert "UpgradeSucceeded" in events(kubectl)

    # v1 stays suspended for the rollback window, then goes; its savepoint stays recorded.
    deadline = time.monotonic() + WINDOW + 30
    while "sessionizer-v1" in flinkdeployments(kubectl):
        assert time.monotonic() < deadline, "v1 outlived its rollback window"
        time.sleep(0.5)
    assert kubectl.get("sj", "sessionizer")["status"]["savepoints"][0]["path"] == savepoint


PERIODIC = "kubernetes.operator.periodic.checkpoint.interval"


def checkpoint_interval(kubectl: Kubectl, deployment: str) -> str | None:
    return flinkdeployments(kubectl)[deployment]["spec"]["flinkConfiguration"].get(PERIODIC)


def last_checkpoint(kubectl: Kubectl, deployment: str) -> int | None:
    status = flinkdeployments(kubectl)[deployment].get("status") or {}
    last = (status.get("jobStatus") or {}).get("checkpointInfo", {}).get("lastCheckpoint") or {}
    return last.get("timeStamp")


def test_a_version_at_rest_stops_asking_fko_for_checkpoints_and_the_next_one_asks_again(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    """The periodic checkpoints FKO triggers serve only the Checkpointed gate: once Ready, the version's
    interval is set blank (FKO takes that without an upgrade), and FKO triggers no more. A new version is
    deployed asking again, passes its gate, and is quieted in turn."""
    ns = str(kubectl.namespace)
    deadline = time.monotonic() + 30
    while checkpoint_interval(kubectl, "sessionizer-v1") != "":
        assert time.monotonic() < deadline, "v1 still asks for periodic checkpoints at rest"
        time.sleep(0.5)
    assert fko.runs(ns, "sessionizer-v1") == [None], "quieting v1 redeployed it"
    time.sleep(1)  # a checkpoint triggered before the change completes
    before = last_checkpoint(kubectl, "sessionizer-v1")
    time.sleep(2 * READINESS / 5 + 1)  # two of the intervals it asked for (a fifth of readinessTimeout)
    assert last_checkpoint(kubectl, "sessionizer-v1") == before, "FKO still triggers checkpoints"
    after = kubectl.get("sj", "sessionizer")
    assert ready(after) and after["status"]["activeVersion"] == "v1"

    kubectl.apply(streamjob("v2"))
    done = wait(kubectl, "v2 active", lambda o: ready(o) and o["status"].get("activeVersion") == "v2")
    gates = {g["name"]: g["passed"] for g in done["status"]["upgrade"]["gates"]}
    assert gates["Checkpointed"], gates
    deadline = time.monotonic() + 30
    while checkpoint_interval(kubectl, "sessionizer-v2") != "":
        assert time.monotonic() < deadline, "v2 still asks for periodic checkpoints at rest"
        time.sleep(0.5)
    assert fko.runs(ns, "sessionizer-v2") == [fko.savepoints(ns, "sessionizer-v1")[-1]]


def test_a_crash_looping_v2_is_rolled_back_to_v1s_savepoint(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    ns = str(kubectl.namespace)
    fko.crash_loop("sessionizer-v2", every=0.5, restart_delay=0.2)
    started = time.monotonic()
    kubectl.apply(streamjob("v2"))
    done = wait(
        kubectl,
        "RolledBack",
        lambda o: conditions(o).get("RolledBack", {}).get("status") == "True",
        timeout=READINESS + 30,
    )
    elapsed = time.monotonic() - started

    savepoint = fko.savepoints(ns, "sessionizer-v1")[-1]
    assert done["status"]["activeVersion"] == "v1"
    assert fko.restored_from(ns, "sessionizer-v1") == savepoint
    conds = conditions(done)
    assert conds["Ready"]["status"] == "False"
    assert conds["Stalled"]["status"] == "True"
    assert "v2 failed" in conds["Stalled"]["message"]
    assert "sessionizer-v2" not in flinkdeployments(kubectl)
    assert {"RollingBack", "RolledBack"} <= set(events(kubectl))
    # From the start of v2 to the decision to roll back: within readinessTimeout plus one poll (1 s here),
    # and one more second for the events' whole-second timestamps.
    started, rolling_back = event_time(kubectl, "SavepointTaken"), event_time(kubectl, "RollingBack")
    assert (rolling_back - started).total_seconds() <= READINESS + 2
    print(
        f"v2 start → rollback decision: {(rolling_back - started).total_seconds():.0f}s; "
        f"apply → RolledBack: {elapsed:.1f}s"
    )
    gates = {g["name"]: g["passed"] for g in done["status"]["upgrade"]["gates"]}
    assert gates["Restarts"] is False


def test_a_job_that_runs_but_never_checkpoints_does_not_pass_the_gate(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    fko.never_checkpoint("sessionizer-v2")
    kubectl.apply(streamjob("v2"))
    done = wait(
        kubectl,
        "RolledBack",
        lambda o: conditions(o).get("RolledBack", {}).get("status") == "True",
        timeout=READINESS + 30,
    )
    assert done["status"]["activeVersion"] == "v1"
    gates = {g["name"]: g for g in done["status"]["upgrade"]["gates"]}
    assert gates["Running"]["passed"] is True
    assert gates["Checkpointed"]["passed"] is False


def test_suspend_takes_a_savepoint_and_resume_restores_from_it(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    ns = str(kubectl.namespace)
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    suspended = wait(kubectl, "Suspended", lambda o: ready(o) and o["status"].get("phase") == "Suspended")
    savepoint = fko.savepoints(ns, "sessionizer-v1")[-1]
    assert [(s["path"], s["reason"]) for s in suspended["status"]["savepoints"]] == [(savepoint, "Suspend")]
    assert fko.state(ns, "sessionizer-v1") == "FINISHED"

    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait(kubectl, "running again", lambda o: ready(o) and o["status"].get("phase") == "Running")
    assert fko.restored_from(ns, "sessionizer-v1") == savepoint


def test_a_suspend_and_a_resume_that_never_complete_say_so_by_their_deadlines(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    """Suspend and resume had no deadline: a savepoint that never came read "Suspending" forever. Past
    savepointTimeout (20 s) and readinessTimeout (15 s) the job is Stalled, with one event each; both are
    still asked for, and the job recovers when FKO does."""
    ns = str(kubectl.namespace)
    fko.savepoint_fails("sessionizer-v1", namespace=ns)
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    overdue = wait(
        kubectl,
        "SuspendTimedOut or SavepointFailed",
        lambda o: conditions(o).get("Stalled", {}).get("reason") in ("SuspendTimedOut", "SavepointFailed"),
        timeout=60,
    )
    assert "savepoint" in conditions(overdue)["Stalled"]["message"].lower()
    fko.savepoint_fails("sessionizer-v1", False, namespace=ns)
    wait(kubectl, "Suspended", lambda o: ready(o) and o["status"].get("phase") == "Suspended", timeout=60)

    fko.deploy_fails("sessionizer-v1", namespace=ns)
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    stuck = wait(
        kubectl,
        "ResumeTimedOut",
        lambda o: conditions(o).get("Stalled", {}).get("reason") == "ResumeTimedOut",
        timeout=READINESS + 45,
    )
    assert stuck["status"]["upgrade"]["overdue"] is True
    time.sleep(3)  # more polls past the deadline: still one event
    assert events(kubectl).count("ResumeTimedOut") == 1
    fko.deploy_fails("sessionizer-v1", False, namespace=ns)
    recovered = wait(kubectl, "running again", lambda o: ready(o) and o["status"].get("phase") == "Running")
    assert not recovered["status"]["upgrade"].get("overdue")


def test_deletion_takes_and_records_a_final_savepoint_and_keeps_the_output(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    ns = str(kubectl.namespace)
    kubectl("delete", "sj", "sessionizer", "--wait=true", "--timeout=60s")

    savepoint = fko.savepoints(ns, "sessionizer-v1")[-1]
    snapshot = kubectl.get("flinkstatesnapshot", "sessionizer-v1-final")
    assert snapshot["spec"]["savepoint"] == {
        "path": savepoint,
        "alreadyExists": True,
        "disposeOnDelete": False,
    }
    assert "FinalSavepoint" in events(kubectl)
    deadline = time.monotonic() + 30
    while flinkdeployments(kubectl):  # the garbage collector follows the ownerReferences
        assert time.monotonic() < deadline, "FlinkDeployments outlived their StreamJob"
        time.sleep(0.5)
    topics = json.loads(kubectl("get", "kafkatopics", "-o", "json"))["items"]
    assert [t["spec"]["topicName"] for t in topics] == ["sessions.v1"]  # deletionPolicy Retain


def test_deleting_a_suspended_streamjob_keeps_its_suspension_savepoint_and_does_not_wait(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    """Found by the generated specs (CI of stop 17): a suspended StreamJob's deletion waited
    spec.upgrade.savepointTimeout for a savepoint newer than its suspension, which FKO never takes of a job
    that is not running. Its last state is the suspension's savepoint: that is the final one."""
    ns = str(kubectl.namespace)
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"suspend":true}}')
    wait(kubectl, "Suspended", lambda o: ready(o) and o["status"].get("phase") == "Suspended")
    savepoint = fko.savepoints(ns, "sessionizer-v1")[-1]
    time.sleep(2)  # the deletion comes after the suspension's savepoint, as a user's would
    later = '{"spec":{"upgrade":{"savepointTimeout":"90m"}}}'  # were it waited for, the test would time out
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", later)

    started = time.monotonic()
    kubectl("delete", "sj", "sessionizer", "--wait=true", "--timeout=60s")
    took = time.monotonic() - started

    assert fko.savepoints(ns, "sessionizer-v1")[-1] == savepoint  # none asked of a stopped job
    assert kubectl.get("flinkstatesnapshot", "sessionizer-v1-final")["spec"]["savepoint"]["path"] == savepoint
    said = [
        (e["reason"], e["message"])
        for e in json.loads(kubectl("get", "events", "-o", "json"))["items"]
        if e["reason"].startswith("FinalSavepoint")
    ]
    assert said == [("FinalSavepoint", f"final savepoint of v1: {savepoint}")], said
    print(f"\ndeleted in {took:.1f} s")


def test_deleting_a_streamjob_that_never_ran_on_an_unreachable_session_cluster_does_not_wait(
    kubectl: Kubectl, kappa_operator: OperatorProcess
) -> None:
    """Found by the generated specs: such a deletion waited spec.upgrade.savepointTimeout (10 min by default)
    for a savepoint of a job that had never run, and giving up then left the version's session records
    behind, each held by its finalizer, and the namespace with them."""
    job = streamjob()
    job["spec"]["runtime"] = {"type": "Session", "session": {"restURL": "http://127.0.0.1:1"}}
    job["spec"]["upgrade"]["savepointTimeout"] = "90m"
    kubectl.apply(job)
    wait(
        kubectl,
        "the outage reported",
        lambda o: conditions(o).get("Ready", {}).get("reason") == "FlinkUnavailable",
    )
    assert kubectl("get", "configmaps", "-l", "kappa.dev/job=sessionizer", "-o", "name").strip()

    started = time.monotonic()
    kubectl("delete", "sj", "sessionizer", "--wait=true", "--timeout=60s")
    took = time.monotonic() - started

    said = {
        e["reason"]: e["message"]
        for e in json.loads(kubectl("get", "events", "-o", "json"))["items"]
        if e["reason"] in ("FinalSavepointSkipped", "FinalSavepointFailed", "JobsLeftRunning")
    }
    assert said.keys() == {"FinalSavepointSkipped", "JobsLeftRunning"}, said
    assert said["FinalSavepointSkipped"] == "v1 was not active yet: only an active version's state is kept"
    # The job id it chose for its submission: the submission may have reached the cluster.
    left = said["JobsLeftRunning"]
    assert "127.0.0.1:1 unreachable" in left and re.search(r"job [0-9a-f]{32}$", left), left
    # Its records went too: nothing holds the namespace.
    assert not kubectl("get", "configmaps", "-l", "kappa.dev/job=sessionizer", "-o", "name").strip()
    print(f"\ndeleted in {took:.1f} s: {left}")


def test_deleting_a_streamjob_whose_first_version_is_still_starting_does_not_wait(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, strimzi: FakeTopicOperator
) -> None:
    """Deletion keeps an active version's state; a first version still starting is not active yet."""
    fko.start_delay("sessionizer-v1", 300, namespace=str(kubectl.namespace))
    job = streamjob()
    job["spec"]["upgrade"]["savepointTimeout"] = "90m"
    kubectl.apply(job)
    wait(kubectl, "v1 deploying", lambda o: "sessionizer-v1" in flinkdeployments(kubectl))
    started = time.monotonic()
    kubectl("delete", "sj", "sessionizer", "--wait=true", "--timeout=60s")
    took = time.monotonic() - started
    said = [
        e
        for e in json.loads(kubectl("get", "events", "-o", "json"))["items"]
        if e["reason"].startswith("Final")
    ]
    assert [(e["reason"], e["message"]) for e in said] == [
        ("FinalSavepointSkipped", "v1 was not active yet: only an active version's state is kept")
    ]
    assert not fko.savepoints(str(kubectl.namespace), "sessionizer-v1")
    print(f"\ndeleted in {took:.1f} s")


def test_deleting_the_namespace_of_a_streamjob_is_quiet(
    live_v1: dict[str, Any], kubectl: Kubectl, admin: Kubectl, kappa_operator: OperatorProcess
) -> None:
    """A terminating namespace refuses new objects (events, records) with 403, and its deployments go with
    it: the operator lets the namespace go, and says so in a few lines, not in a traceback per retry (it
    logged them for about 60 s)."""
    ns = str(kubectl.namespace)
    log_before = len(kappa_operator.log())
    started = time.monotonic()
    admin("delete", "namespace", ns, "--wait=true", "--timeout=90s")
    took = time.monotonic() - started
    time.sleep(3)  # anything the operator still had to say about it
    said = kappa_operator.log()[log_before:]
    assert "Traceback" not in said, said[-4000:]
    assert said.count(ns) <= 12, said[-4000:]  # a line per state change, not one per retry
    assert took < 120  # the namespace controller and the final savepoint, on a loaded machine
    print(f"\nnamespace deleted in {took:.1f} s; the operator said {said.count(ns)} line(s) about it")


@pytest.mark.parametrize("crash_point", ["after the savepoint", "after the new deployment"])
def test_a_crash_in_the_middle_of_an_upgrade_ends_like_an_uninterrupted_one(
    live_v1: dict[str, Any],
    kubectl: Kubectl,
    fko: FakeFlinkOperator,
    kappa_operator: OperatorProcess,
    crash_point: str,
) -> None:
    ns = str(kubectl.namespace)
    fko.start_delay("sessionizer-v2", 3)  # keep v2 starting for a while
    kubectl.apply(streamjob("v2"))
    deadline = time.monotonic() + 30
    while True:
        if crash_point == "after the savepoint" and fko.savepoints(ns, "sessionizer-v1"):
            break
        if crash_point == "after the new deployment" and "sessionizer-v2" in flinkdeployments(kubectl):
            break
        assert time.monotonic() < deadline, f"never reached {crash_point}"
        time.sleep(0.05)
    kappa_operator.kill()
    kappa_operator.start()

    done = wait(kubectl, "v2 active", lambda o: ready(o) and o["status"].get("activeVersion") == "v2")
    assert sorted(flinkdeployments(kubectl)) == ["sessionizer-v1", "sessionizer-v2"]
    assert len(fko.savepoints(ns, "sessionizer-v1")) == 1, "the savepoint was taken twice"
    assert fko.runs(ns, "sessionizer-v2") == [fko.savepoints(ns, "sessionizer-v1")[0]], "v2 started twice"
    assert [s["path"] for s in done["status"]["savepoints"]] == fko.savepoints(ns, "sessionizer-v1")


def test_a_rollback_request_within_the_window_restores_v1_from_its_savepoint(
    live_v1: dict[str, Any], kubectl: Kubectl, fko: FakeFlinkOperator
) -> None:
    ns = str(kubectl.namespace)
    kubectl.apply(streamjob("v2"))
    wait(kubectl, "v2 active", lambda o: ready(o) and o["status"].get("activeVersion") == "v2")
    savepoint = fko.savepoints(ns, "sessionizer-v1")[-1]

    kubectl("annotate", "sj", "sessionizer", "kappa.dev/rollback=req-1")
    done = wait(kubectl, "rolled back", lambda o: conditions(o).get("RolledBack", {}).get("status") == "True")

    assert done["status"]["activeVersion"] == "v1"
    assert done["status"]["handledRequests"]["rollback"] == "req-1"
    assert fko.restored_from(ns, "sessionizer-v1") == savepoint
    assert "sessionizer-v2" not in flinkdeployments(kubectl)
    assert kubectl.get("sj", "sessionizer")["spec"]["version"] == "v2"  # the operator never writes spec


def test_a_failing_output_topic_keeps_the_job_from_ready_and_says_why(
    kappa_operator: OperatorProcess, kubectl: Kubectl, fko: FakeFlinkOperator, strimzi: FakeTopicOperator
) -> None:
    strimzi.fail(
        "sessions-v1", "KafkaError", "org.apache.kafka.common.errors.PolicyViolationException: denied"
    )
    kubectl.apply(streamjob("v1"))
    stuck = wait(
        kubectl,
        "OutputTopicFailed",
        lambda o: conditions(o).get("Stalled", {}).get("reason") == "OutputTopicFailed",
    )
    assert conditions(stuck)["Ready"]["status"] == "False"
    assert "PolicyViolationException" in conditions(stuck)["Stalled"]["message"]

    strimzi.heal("sessions-v1")
    wait(kubectl, "Ready once the topic is", ready)
