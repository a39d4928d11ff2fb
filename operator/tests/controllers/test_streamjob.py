"""StreamJob stories through `StreamJobReconciler(...).reconcile`, on the fakes (tests/fakes/): what a user
sees in the job's status, conditions and events, and in the FlinkDeployments it gets."""

from __future__ import annotations

from tests.controllers.objects import JOB, clicks, running, streamjob
from tests.fakes.kube import FLINK, STRIMZI
from tests.fakes.strimzi import FakeStrimzi
from tests.fakes.world import LOG, World


async def test_a_new_job_gets_its_flink_deployment_and_says_it_is_deploying(world: World) -> None:
    clicks(world)
    world.put(streamjob(world))

    await world.look("StreamJob", JOB)

    fds = world.deployments(JOB)
    assert list(fds) == ["sessionizer-v1"]
    job = fds["sessionizer-v1"]["spec"]["job"]
    assert (job["state"], job["upgradeMode"]) == ("running", "savepoint")
    assert "INSERT INTO `sessions.v1`" in job["args"][0]
    assert "/* shop.sessionizer.v1 */" in job["args"][0]
    owner = fds["sessionizer-v1"]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("StreamJob", world.get("StreamJob", JOB)["metadata"]["uid"])
    status = world.status("StreamJob", JOB)
    assert status["phase"] == "Deploying"
    assert status["observedGeneration"] == 1
    ready = world.condition("StreamJob", JOB, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Deploying")
    assert world.condition("StreamJob", JOB, "Reconciling")["status"] == "True"
    assert world.events("StreamJob", JOB) == [("Normal", "Deploying", 1)]


async def test_fko_reporting_running_with_a_checkpoint_makes_the_job_ready(world: World) -> None:
    clicks(world)
    world.put(streamjob(world))
    await world.look("StreamJob", JOB)

    await world.flink(passes=1)  # RUNNING, no checkpoint since its start yet
    await world.look("StreamJob", JOB)
    assert world.status("StreamJob", JOB)["deployments"][0]["jobState"] == "RUNNING"
    ready = world.condition("StreamJob", JOB, "Ready")
    assert ready["status"] == "False"
    assert "no checkpoint completed since the start" in str(
        world.status("StreamJob", JOB)["upgrade"]["gates"]
    )

    await world.flink(passes=2)  # FKO triggers a checkpoint, then reports it completed
    await world.look("StreamJob", JOB)

    status = world.status("StreamJob", JOB)
    assert (status["phase"], status["activeVersion"]) == ("Running", "v1")
    ready = world.condition("StreamJob", JOB, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Running")
    assert ready["observedGeneration"] == 1
    assert world.condition("StreamJob", JOB, "Reconciling")["status"] == "False"
    assert world.reasons("StreamJob", JOB) == ["Deploying", "UpgradeSucceeded"]

    await world.look("StreamJob", JOB)
    at_rest = world.get("StreamJob", JOB)
    await world.look("StreamJob", JOB)  # at rest: a look writes nothing and says nothing
    assert (
        world.get("StreamJob", JOB)["metadata"]["resourceVersion"] == at_rest["metadata"]["resourceVersion"]
    )
    assert world.reasons("StreamJob", JOB) == ["Deploying", "UpgradeSucceeded"]


async def test_a_look_reads_the_job_only_when_the_watch_has_not_shown_the_operators_last_write(
    world: World,
) -> None:
    """At 1,000 jobs the GET of each look was 2 requests a job in a create or a restart, and one per look
    while a version waited for its checkpoint (controllers/known.py). A look takes the job as the watch
    shows it, a user's edit included; only a look that comes before the watch shows the operator's own
    last write reads the job."""
    clicks(world)
    world.put(streamjob(world))

    def reads() -> int:
        return sum(1 for key in world.kube.gets if key[1] == "StreamJob")

    await world.look("StreamJob", JOB)  # the watch showed the new job: no read
    await world.flink(passes=1)  # RUNNING
    await world.streamjobs.reconcile("shop", JOB, LOG)  # writes jobState RUNNING: no read either
    assert reads() == 0
    await world.streamjobs.reconcile("shop", JOB, LOG)  # before the watch shows that write: read
    assert reads() == 1
    await world.flink(passes=2)
    await world.look("StreamJob", JOB)
    assert world.condition("StreamJob", JOB, "Ready")["status"] == "True"

    world.edit("StreamJob", JOB, lambda job: job["spec"].update(version="v2"))
    await world.look("StreamJob", JOB)

    assert reads() == 1
    reconciling = world.condition("StreamJob", JOB, "Reconciling")  # the edit was seen
    assert (reconciling["status"], reconciling["reason"], reconciling["observedGeneration"]) == (
        "True",
        "Savepointing",
        2,
    )


async def test_a_version_change_is_a_savepoint_upgrade(world: World) -> None:
    clicks(world)
    await running(world, streamjob(world, "v1"))

    world.put(streamjob(world, "v2"))
    await world.look("StreamJob", JOB)

    # 1. v1 is suspended with a savepoint; v2 waits for it.
    assert list(world.deployments(JOB)) == ["sessionizer-v1"]
    assert world.deployments(JOB)["sessionizer-v1"]["spec"]["job"]["state"] == "suspended"
    reconciling = world.condition("StreamJob", JOB, "Reconciling")
    assert (reconciling["status"], reconciling["reason"]) == ("True", "Savepointing")
    assert world.condition("StreamJob", JOB, "Ready")["observedGeneration"] == 2
    assert world.reasons("StreamJob", JOB)[-1] == "UpgradeStarted"

    # 2. FKO takes the savepoint; v2 starts from it.
    await world.flink(passes=1)
    savepoint = world.fko.status("shop", "sessionizer-v1")["jobStatus"]["upgradeSavepointPath"]
    await world.look("StreamJob", JOB)
    v2 = world.deployments(JOB)["sessionizer-v2"]["spec"]["job"]
    assert (v2["state"], v2["initialSavepointPath"]) == ("running", savepoint)
    assert world.reasons("StreamJob", JOB)[-1] == "SavepointTaken"

    # 3. v2 runs and checkpoints: it is ready, and v1 stays suspended for rollback.
    await world.flink()
    await world.look("StreamJob", JOB)
    assert world.fko.restored_from("shop", "sessionizer-v2") == savepoint
    status = world.status("StreamJob", JOB)
    assert (status["phase"], status["activeVersion"]) == ("Running", "v2")
    roles = {d["version"]: (d["role"], d["jobState"]) for d in status["deployments"]}
    assert roles == {"v1": ("previous", "FINISHED"), "v2": ("active", "RUNNING")}
    assert [s["path"] for s in status["savepoints"]] == [savepoint]
    ready = world.condition("StreamJob", JOB, "Ready")
    assert (ready["status"], ready["observedGeneration"]) == ("True", 2)
    assert world.reasons("StreamJob", JOB)[-1] == "UpgradeSucceeded"


async def test_a_failed_savepoint_keeps_the_running_version_and_stalls_once(world: World) -> None:
    clicks(world)
    await running(world, streamjob(world, "v1"))
    world.fko.savepoint_fails("sessionizer-v1")

    world.put(streamjob(world, "v2"))
    await world.look("StreamJob", JOB)
    await world.flink(passes=1)  # FKO: "Savepoint Error", the job keeps running
    await world.look("StreamJob", JOB)

    assert list(world.deployments(JOB)) == ["sessionizer-v1"]  # v2 was never started
    assert world.deployments(JOB)["sessionizer-v1"]["spec"]["job"]["state"] == "running"
    stalled = world.condition("StreamJob", JOB, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "SavepointFailed")
    assert "Savepoint Error" in stalled["message"]
    assert "v2 was not started" in stalled["message"]

    await world.look("StreamJob", JOB)  # until spec.version changes again
    stalled = world.condition("StreamJob", JOB, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "UpgradeFailed")
    assert "v1 stays active" in stalled["message"]
    assert world.status("StreamJob", JOB)["activeVersion"] == "v1"
    assert [e for e in world.events("StreamJob", JOB) if e[1] == "SavepointFailed"] == [
        ("Warning", "SavepointFailed", 1)
    ]


async def test_sql_with_an_unknown_variable_stalls_with_one_event_until_fixed(world: World) -> None:
    clicks(world)
    job = streamjob(world)
    job["spec"]["flink"]["sql"] = ["INSERT INTO `${KAPPA_OUTPUT_TOPC}` SELECT * FROM clicks"]
    world.put(job)

    await world.look("StreamJob", JOB)
    await world.look("StreamJob", JOB)  # the same generation again: nothing new is said

    assert world.deployments(JOB) == {}
    stalled = world.condition("StreamJob", JOB, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSQL")
    assert "KAPPA_OUTPUT_TOPC" in stalled["message"]
    assert world.condition("StreamJob", JOB, "Ready")["status"] == "False"
    assert world.events("StreamJob", JOB) == [("Warning", "InvalidSQL", 1)]

    world.put(streamjob(world))  # fixed: a new generation deploys
    await world.look("StreamJob", JOB)
    assert list(world.deployments(JOB)) == ["sessionizer-v1"]
    assert world.condition("StreamJob", JOB, "Stalled")["status"] == "False"


async def test_a_spec_the_model_refuses_stalls_with_one_event(world: World) -> None:
    job = streamjob(world)
    del job["spec"]["flink"]["image"]  # a FlinkDeployment needs an image
    world.put(job)

    following = await world.look("StreamJob", JOB)

    assert following is None  # no next look until the spec changes
    assert world.deployments(JOB) == {}
    stalled = world.condition("StreamJob", JOB, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
    assert "spec.flink" in stalled["message"]
    assert world.events("StreamJob", JOB) == [("Warning", "InvalidSpec", 1)]


async def test_without_fko_the_job_fails_and_says_to_install_it(world: World) -> None:
    world.kube.unserve([(FLINK, "FlinkDeployment")])
    clicks(world)
    world.put(streamjob(world))

    await world.look("StreamJob", JOB)
    await world.look("StreamJob", JOB)

    assert world.status("StreamJob", JOB)["phase"] == "Failed"
    stalled = world.condition("StreamJob", JOB, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "FlinkOperatorMissing")
    assert "install the Flink Kubernetes Operator" in stalled["message"]
    assert world.events("StreamJob", JOB) == [("Warning", "FlinkOperatorMissing", 1)]


async def test_a_new_version_that_crash_loops_is_rolled_back_to_the_savepoint(world: World) -> None:
    clicks(world)
    await running(world, streamjob(world, "v1", maxRestarts=0))
    world.fko.crash_loop("sessionizer-v2", every=0.0, restart_delay=0.0)  # fails at each FKO pass
    world.put(streamjob(world, "v2", maxRestarts=0))

    await world.look("StreamJob", JOB)  # suspend v1 with a savepoint
    await world.flink(passes=1)
    savepoint = world.fko.status("shop", "sessionizer-v1")["jobStatus"]["upgradeSavepointPath"]
    await world.look("StreamJob", JOB)  # start v2 from it
    await world.flink(passes=2)  # v2 runs, then restarts
    await world.look("StreamJob", JOB)

    assert world.status("StreamJob", JOB)["phase"] == "RollingBack"
    assert list(world.deployments(JOB)) == ["sessionizer-v1"]  # v2 deleted, v1 resuming
    assert world.deployments(JOB)["sessionizer-v1"]["spec"]["job"]["state"] == "running"
    assert world.events("StreamJob", JOB)[-1] == ("Warning", "RollingBack", 1)

    await world.flink(passes=1)
    await world.look("StreamJob", JOB)

    assert world.fko.restored_from("shop", "sessionizer-v1") == savepoint
    status = world.status("StreamJob", JOB)
    assert (status["phase"], status["activeVersion"], status["upgrade"]["step"]) == (
        "Running",
        "v1",
        "RolledBack",
    )
    stalled = world.condition("StreamJob", JOB, "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RolledBack")
    assert "v2 failed" in stalled["message"]
    assert world.events("StreamJob", JOB)[-1] == ("Warning", "RolledBack", 1)


async def test_suspend_takes_a_savepoint_and_resume_starts_from_it(world: World) -> None:
    clicks(world)
    await running(world, streamjob(world))
    suspended = streamjob(world)
    suspended["spec"]["suspend"] = True

    world.put(suspended)
    await world.look("StreamJob", JOB)
    assert world.deployments(JOB)["sessionizer-v1"]["spec"]["job"]["state"] == "suspended"
    await world.flink(passes=1)
    await world.look("StreamJob", JOB)

    savepoint = world.fko.status("shop", "sessionizer-v1")["jobStatus"]["upgradeSavepointPath"]
    assert world.status("StreamJob", JOB)["phase"] == "Suspended"
    ready = world.condition("StreamJob", JOB, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Suspended")
    assert savepoint in ready["message"]

    world.put(streamjob(world))
    await world.look("StreamJob", JOB)
    await world.flink(passes=1)
    await world.look("StreamJob", JOB)

    assert world.fko.restored_from("shop", "sessionizer-v1") == savepoint
    assert world.status("StreamJob", JOB)["phase"] == "Running"
    assert world.condition("StreamJob", JOB, "Ready")["reason"] == "Running"
    assert world.reasons("StreamJob", JOB)[-4:] == ["Suspending", "Suspended", "Resuming", "Resumed"]


async def test_with_strimzi_a_version_gets_its_kafkatopic_and_ready_waits_for_it(world: World) -> None:
    strimzi = FakeStrimzi(world.kube, world.kafka)
    strimzi.kafka_cluster("shop", "events", world.bootstrap)
    clicks(world)
    job = streamjob(world)
    job["spec"]["source"]["kafka"] = {"clusterRef": "events"}  # its bootstrap servers from the Kafka's status
    world.put(job)

    await world.look("StreamJob", JOB)
    topics = world.kube.objects(STRIMZI, "KafkaTopic", "shop")
    assert [(t["spec"]["topicName"], t["metadata"]["labels"]["strimzi.io/cluster"]) for t in topics] == [
        ("sessions.v1", "events")
    ]
    fd = world.deployments(JOB)["sessionizer-v1"]
    assert world.bootstrap in str(fd["spec"])  # the job is given the listener's bootstrap servers

    await world.flink()
    await world.look("StreamJob", JOB)  # the job passes its gates, its output topic is not ready
    ready = world.condition("StreamJob", JOB, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "OutputNotReady")
    assert ready["message"] == "KafkaTopic sessions-v1: the topic operator has not seen the latest spec"

    await strimzi.step()
    await world.look("StreamJob", JOB)
    assert world.kafka.ends(["sessions.v1"]) == {("sessions.v1", 0): 0, ("sessions.v1", 1): 0}
    ready = world.condition("StreamJob", JOB, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Running")
