"""The objects the controller stories apply, as a user writes them, and the steps several stories share."""

from __future__ import annotations

from typing import Any

from tests.fakes.world import World

JOB = "sessionizer"
SQL = "INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks /* ${KAPPA_GROUP_ID} */"


def streamjob(
    world: World, version: str = "v1", *, view: str | None = None, **upgrade: Any
) -> dict[str, Any]:
    """A StreamJob reading `clicks` from the world's Kafka, writing versioned `sessions.<version>` topics;
    ready as soon as every gate passes (stableFor 0s)."""
    output: dict[str, Any] = {"topic": {"base": "sessions", "partitions": 2}}
    if view:
        output["view"] = view
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": JOB},
        "spec": {
            "version": version,
            "source": {"kafka": {"bootstrapServers": world.bootstrap}, "topics": ["clicks"]},
            "output": output,
            "flink": {"image": "kappa-dev/flink-sql-runner:1.20", "flinkVersion": "v1_20", "sql": [SQL]},
            "upgrade": {"stableFor": "0s", "rollbackWindow": "10m", **upgrade},
        },
    }


def view(name: str = "sessions") -> dict[str, Any]:
    """A MaterializedView whose alias is a ConfigMap naming the active topic."""
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "MaterializedView",
        "metadata": {"name": name},
        "spec": {"backend": {"type": "configMap", "configMap": {"name": f"{name}-view"}}},
    }


def clicks(world: World, records: int = 20) -> None:
    """The source topic, two partitions, with records in it."""
    world.kafka.create_topic("clicks", 2)
    world.kafka.produce("clicks", records)


async def running(world: World, job: dict[str, Any]) -> dict[str, Any]:
    """Apply the job and take it to Ready: a look deploys, FKO runs it and checkpoints, a look sees it."""
    world.put(job)
    await world.look("StreamJob", JOB)
    await world.flink()
    await world.look("StreamJob", JOB)
    assert world.condition("StreamJob", JOB, "Ready")["status"] == "True", world.status("StreamJob", JOB)
    return world.get("StreamJob", JOB)


def replayrun(
    name: str,
    version: str,
    *,
    start: dict[str, Any] | None = None,
    until: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A ReplayRun of the job at `version`, from the earliest retained record to the live head by default."""
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "ReplayRun",
        "metadata": {"name": name},
        "spec": {
            "jobRef": {"name": JOB},
            "version": version,
            "from": start or {"earliest": True},
            "until": until or {"live": True},
            **spec,
        },
    }


def offsets(topic: str, *at: int) -> list[dict[str, Any]]:
    """spec offsets: one per partition, in order."""
    return [{"topic": topic, "partition": p, "offset": o} for p, o in enumerate(at)]
