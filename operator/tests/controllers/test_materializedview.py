"""MaterializedView stories through `MaterializedViewReconciler(...).reconcile`, on the fakes (tests/fakes/):
the view's status, conditions and events, and where its ConfigMap alias points."""

from __future__ import annotations

from tests.controllers.objects import clicks, running, streamjob, view
from tests.fakes.world import World


def alias(world: World) -> dict[str, str] | None:
    found = world.kube.object("v1", "ConfigMap", "shop", "sessions-view")
    return found["data"] if found else None


async def test_a_view_no_job_writes_waits_for_its_first_version(world: World) -> None:
    world.put(view())

    await world.look("MaterializedView", "sessions")
    await world.look("MaterializedView", "sessions")

    status = world.status("MaterializedView", "sessions")
    assert status["backend"] == "configMap"
    assert status.get("activeVersion") is None
    ready = world.condition("MaterializedView", "sessions", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AwaitingFirstVersion")
    assert world.events("MaterializedView", "sessions") == [("Normal", "Accepted", 1)]
    assert alias(world) is None


async def test_the_first_version_is_served_once_its_output_exists(world: World) -> None:
    clicks(world)
    world.put(view())
    await running(world, streamjob(world, view="sessions"))

    await world.look("MaterializedView", "sessions")  # v1 is active, but has written no topic yet
    assert alias(world) is None
    assert world.status("MaterializedView", "sessions").get("activeVersion") is None

    world.kafka.create_topic("sessions.v1", 2)  # v1's job writes its output
    await world.look("MaterializedView", "sessions")

    assert alias(world) == {"activeTopic": "sessions.v1"}
    status = world.status("MaterializedView", "sessions")
    assert status["activeVersion"] == "v1"
    assert [(v["name"], v["physical"], v["state"]) for v in status["versions"]] == [
        ("v1", "sessions.v1", "Active")
    ]
    ready = world.condition("MaterializedView", "sessions", "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Serving")
    assert world.reasons("MaterializedView", "sessions")[-1] == "Switched"

    await world.look("MaterializedView", "sessions")  # served: nothing more to say
    assert world.reasons("MaterializedView", "sessions").count("Switched") == 1


async def test_an_alias_someone_else_repointed_is_not_overwritten(world: World) -> None:
    await hand_repointed(world)

    await world.look("MaterializedView", "sessions")
    await world.look("MaterializedView", "sessions")

    assert alias(world) == {"activeTopic": "hand-made"}
    assert world.status("MaterializedView", "sessions").get("activeVersion") is None
    stalled = world.condition("MaterializedView", "sessions", "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "AliasMoved")
    assert "set spec.activeVersion to choose" in stalled["message"]
    assert world.events("MaterializedView", "sessions") == [("Warning", "AliasMoved", 1)]


async def test_a_pin_takes_back_an_alias_someone_else_repointed(world: World) -> None:
    await hand_repointed(world)
    await world.look("MaterializedView", "sessions")

    world.edit("MaterializedView", "sessions", lambda v: v["spec"].update(activeVersion="v1"))
    await world.look("MaterializedView", "sessions")

    assert alias(world) == {"activeTopic": "sessions.v1"}
    assert world.status("MaterializedView", "sessions")["activeVersion"] == "v1"
    assert world.condition("MaterializedView", "sessions", "Stalled")["status"] == "False"


async def hand_repointed(world: World) -> None:
    """v1 runs and has written its topic, but someone pointed the view's ConfigMap elsewhere first."""
    clicks(world)
    world.put(view())
    await running(world, streamjob(world, view="sessions"))
    world.kafka.create_topic("sessions.v1", 2)
    world.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "sessions-view"},
            "data": {"activeTopic": "hand-made"},
        }
    )
