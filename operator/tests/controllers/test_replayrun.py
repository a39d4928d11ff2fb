"""ReplayRun stories through `ReplayRunReconciler(...).reconcile`, on the fakes (tests/fakes/): the phases a
user follows in status, the events, the replay's FlinkDeployment, consumer group and output, and the view
switch a live run makes."""

from __future__ import annotations

from tests.controllers.objects import JOB, clicks, offsets, replayrun, running, streamjob, view
from tests.fakes.kube import KAPPA
from tests.fakes.world import World

GROUP = "shop.sessionizer.v2"


async def replay_moves(world: World, name: str, until: str, looks: int = 10) -> list[str]:
    """Looks at the run until it reaches phase `until`; meanwhile FKO runs what it deploys and the replay's
    job reads all there is (its group commits at the end of `clicks`). The phases seen, in order."""
    seen: list[str] = []
    for _ in range(looks):
        await world.look("ReplayRun", name)
        phase = world.status("ReplayRun", name)["phase"]
        if not seen or seen[-1] != phase:
            seen.append(phase)
        if phase == until:
            return seen
        if phase in ("Replaying", "CatchingUp"):
            await world.flink()
            world.kafka.consume_all(GROUP, ["clicks"])
            await world.lag.poll()
    raise AssertionError(f"{name} did not reach {until}: {seen}")


async def test_a_backfill_passes_preflight_replays_to_its_end_and_cleans_up(world: World) -> None:
    clicks(world, 20)
    await running(world, streamjob(world))
    world.put(replayrun("backfill", "v2", until={"offsets": offsets("clicks", 10, 10)}))

    await world.look("ReplayRun", "backfill")
    assert world.status("ReplayRun", "backfill")["phase"] == "Preflight"
    assert world.reasons("ReplayRun", "backfill") == ["Accepted", "Preflight"]

    await world.look("ReplayRun", "backfill")
    status = world.status("ReplayRun", "backfill")
    assert status["phase"] == "Replaying"
    assert all(check["passed"] for check in status["preflight"])
    assert status["startOffsets"] == offsets("clicks", 0, 0)
    assert status["targetOffsets"] == offsets("clicks", 10, 10)
    replay = world.deployments(JOB)["sessionizer-v2"]
    assert replay["metadata"]["labels"]["kappa.dev/role"] == "replay"
    assert replay["spec"]["job"]["state"] == "running"
    assert world.kafka.groups[GROUP] == {("clicks", 0): 0, ("clicks", 1): 0}  # seeded at the start

    await world.flink()
    world.kafka.commit(GROUP, {("clicks", 0): 10, ("clicks", 1): 10})  # the replay read up to its end
    await world.look("ReplayRun", "backfill")

    status = world.status("ReplayRun", "backfill")
    assert (status["phase"], status["reason"]) == ("Succeeded", "BackfillComplete")
    assert status["progress"]["percent"] == "100%"
    ready = world.condition("ReplayRun", "backfill", "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "BackfillComplete")
    assert [t["phase"] for t in status["transitions"]] == ["Preflight", "Replaying", "Succeeded"]

    await world.look("ReplayRun", "backfill")  # an end state only finishes its cleanup
    assert world.status("ReplayRun", "backfill")["cleanup"] == "Done"
    assert world.reasons("ReplayRun", "backfill")[-2:] == ["BackfillComplete", "CleanedUp"]
    assert world.status("StreamJob", JOB)["activeVersion"] == "v1"  # a backfill replaces nothing


async def test_a_start_that_retention_deleted_fails_preflight_and_creates_nothing(world: World) -> None:
    clicks(world, 20)
    await running(world, streamjob(world))
    await world.kafka.admin(world.bootstrap).delete_records({("clicks", 0): 5, ("clicks", 1): 5})
    start = {"offsets": offsets("clicks", 0, 0)}
    world.put(replayrun("late", "v2", start=start, until={"offsets": offsets("clicks", 10, 10)}))

    await world.look("ReplayRun", "late")
    await world.look("ReplayRun", "late")
    await world.look("ReplayRun", "late")

    status = world.status("ReplayRun", "late")
    assert (status["phase"], status["reason"]) == ("Failed", "PreflightFailed")
    failed = [c for c in status["preflight"] if not c["passed"]]
    assert [(c["name"], c["reason"]) for c in failed] == [("StartRetained", "StartDeletedByRetention")]
    stalled = world.condition("ReplayRun", "late", "Stalled")
    assert stalled["status"] == "True"
    assert "clicks[0]: start 0 < log start 5" in stalled["message"]
    assert [e for e in world.events("ReplayRun", "late") if e[0] == "Warning"] == [
        ("Warning", "PreflightFailed", 1)
    ]
    assert list(world.deployments(JOB)) == ["sessionizer-v1"]
    assert GROUP not in world.kafka.groups


async def test_a_run_applied_before_its_job_waits_for_it(world: World) -> None:
    clicks(world)
    world.put(replayrun("early", "v2"))

    await world.look("ReplayRun", "early")
    await world.look("ReplayRun", "early")

    assert world.status("ReplayRun", "early")["phase"] == "Pending"
    ready = world.condition("ReplayRun", "early", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForJob")
    assert "StreamJob sessionizer" in ready["message"]
    assert world.events("ReplayRun", "early") == [("Normal", "Accepted", 1)]

    await running(world, streamjob(world))
    await world.look("ReplayRun", "early")
    assert world.status("ReplayRun", "early")["phase"] == "Preflight"


async def test_a_live_replay_waits_for_approval_then_cuts_the_view_over_and_the_job_adopts_it(
    world: World,
) -> None:
    clicks(world, 20)
    world.put(view())
    await running(world, streamjob(world, view="sessions"))
    world.kafka.create_topic("sessions.v1", 2)  # v1's job writes its output
    world.kafka.produce("sessions.v1", 20)
    await world.look("MaterializedView", "sessions")
    world.put(replayrun("to-v2", "v2", catchUp={"stableFor": "0s"}, rollbackWindow="0s"))

    phases = await replay_moves(world, "to-v2", until="Validating")
    assert phases == ["Preflight", "Replaying", "CatchingUp", "Validating"]
    world.kafka.produce("sessions.v2", 20)  # the replay wrote as much as v1 did: the count gate passes
    await world.look("ReplayRun", "to-v2")

    status = world.status("ReplayRun", "to-v2")
    assert status["phase"] == "AwaitingApproval"
    assert [(c["name"], c["passed"]) for c in status["validation"]] == [("CountRatio", True)]
    assert world.kube.object("v1", "ConfigMap", "shop", "sessions-view")["data"] == {
        "activeTopic": "sessions.v1"
    }

    await world.kube.annotate(KAPPA, "ReplayRun", "shop", "to-v2", {"kappa.dev/approve": "alice-1"})
    await replay_moves(world, "to-v2", until="Succeeded")

    assert world.kube.object("v1", "ConfigMap", "shop", "sessions-view")["data"] == {
        "activeTopic": "sessions.v2"
    }
    status = world.status("ReplayRun", "to-v2")
    assert (status["cutover"]["fromVersion"], status["cutover"]["toVersion"]) == ("v1", "v2")
    assert status["handledRequests"]["approve"] == "alice-1"
    assert world.condition("ReplayRun", "to-v2", "Ready")["status"] == "True"
    assert {"CutOver", "Succeeded"} <= set(world.reasons("ReplayRun", "to-v2"))

    await world.look("MaterializedView", "sessions")
    view_status = world.status("MaterializedView", "sessions")
    assert (view_status["activeVersion"], view_status["previousVersion"]) == ("v2", "v1")

    await world.look("StreamJob", JOB)  # the job follows its run: v2 is live
    await world.flink()
    await world.look("StreamJob", JOB)
    assert world.status("StreamJob", JOB)["activeVersion"] == "v2"
    assert world.condition("StreamJob", JOB, "Ready")["status"] == "True"
    assert "Adopted" in world.reasons("StreamJob", JOB)


async def test_a_replay_that_fails_validation_leaves_the_view_where_it_was(world: World) -> None:
    clicks(world, 20)
    world.put(view())
    await running(world, streamjob(world, view="sessions"))
    world.kafka.create_topic("sessions.v1", 2)
    world.kafka.produce("sessions.v1", 20)
    await world.look("MaterializedView", "sessions")
    world.put(replayrun("to-v2", "v2", catchUp={"stableFor": "0s"}))

    await replay_moves(world, "to-v2", until="Validating")
    world.kafka.produce("sessions.v2", 200)  # ten times what v1 wrote: outside the count ratio
    await world.look("ReplayRun", "to-v2")
    await world.look("ReplayRun", "to-v2")

    status = world.status("ReplayRun", "to-v2")
    assert (status["phase"], status["reason"]) == ("Failed", "ValidationFailed")
    assert [(c["name"], c["passed"]) for c in status["validation"]] == [("CountRatio", False)]
    stalled = world.condition("ReplayRun", "to-v2", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "ValidationFailed")
    assert [e for e in world.events("ReplayRun", "to-v2") if e[0] == "Warning"] == [
        ("Warning", "ValidationFailed", 1)
    ]
    assert world.kube.object("v1", "ConfigMap", "shop", "sessions-view")["data"] == {
        "activeTopic": "sessions.v1"
    }
    assert world.status("StreamJob", JOB)["activeVersion"] == "v1"
