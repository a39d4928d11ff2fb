"""The fakes keep the API server's and Kafka's rules the controllers rely on (tests/fakes/): if one of these
fails, the stories of this tier prove nothing."""

from __future__ import annotations

import pytest
from kubernetes import client

from kappa.adapters.configmap_alias import ConfigMapAlias
from kappa.adapters.kafka.values import GroupInUse, UnknownTopic
from kappa.adapters.kube import ApiException, NotServed
from tests.fakes.core_api import fake_api_client
from tests.fakes.kube import FLINK, KAPPA
from tests.fakes.world import World


def job(spec: dict[str, object]) -> dict[str, object]:
    return {
        "apiVersion": KAPPA,
        "kind": "StreamJob",
        "metadata": {"name": "j", "namespace": "shop"},
        "spec": spec,
    }


async def test_generation_follows_the_spec_and_status_is_a_merge_patch(world: World) -> None:
    kube = world.kube
    created = kube.put(job({"version": "v1"}))
    assert created["metadata"]["generation"] == 1

    await kube.patch_status(
        KAPPA, "StreamJob", "shop", "j", {"phase": "Running", "upgrade": {"step": "Idle"}}
    )
    await kube.patch_status(KAPPA, "StreamJob", "shop", "j", {"upgrade": {"toVersion": "v2"}, "phase": None})
    found = await kube.get(KAPPA, "StreamJob", "shop", "j")
    assert found is not None
    assert found["status"] == {"upgrade": {"step": "Idle", "toVersion": "v2"}}
    assert found["metadata"]["generation"] == 1  # status is a subresource

    kube.put(job({"version": "v2"}))
    found = await kube.get(KAPPA, "StreamJob", "shop", "j")
    assert found is not None
    assert found["metadata"]["generation"] == 2
    assert found["status"] == {"upgrade": {"step": "Idle", "toVersion": "v2"}}  # a spec write keeps status
    assert int(found["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


async def test_apply_is_idempotent_and_a_stale_replace_is_a_conflict(world: World) -> None:
    kube = world.kube
    fd = {
        "apiVersion": FLINK,
        "kind": "FlinkDeployment",
        "metadata": {"name": "d", "namespace": "shop"},
        "spec": {},
    }
    first = await kube.apply(fd)
    again = await kube.apply(fd)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {}}
    made = await kube.create(cm)
    with pytest.raises(ApiException) as exists:
        await kube.create(cm)
    assert exists.value.status == 409
    await kube.replace({**made, "data": {"k": "1"}})
    with pytest.raises(ApiException) as stale:
        await kube.replace({**made, "data": {"k": "2"}})
    assert stale.value.status == 409


async def test_deleting_an_owner_deletes_its_children_and_unserved_kinds_say_so(world: World) -> None:
    kube = world.kube
    owner = kube.put(job({"version": "v1"}))
    ref = {"apiVersion": KAPPA, "kind": "StreamJob", "name": "j", "uid": owner["metadata"]["uid"]}
    fd = {"apiVersion": FLINK, "kind": "FlinkDeployment", "metadata": {"name": "d", "namespace": "shop"}}
    fd["metadata"]["ownerReferences"] = [ref]  # type: ignore[index]
    await kube.apply(fd)
    assert await kube.delete(KAPPA, "StreamJob", "shop", "j") is True
    assert await kube.get(FLINK, "FlinkDeployment", "shop", "d") is None
    assert await kube.delete(KAPPA, "StreamJob", "shop", "j") is False

    kube.unserve([(FLINK, "FlinkDeployment")])
    assert await kube.served(FLINK, "FlinkDeployment") is False
    with pytest.raises(NotServed):
        await kube.select(FLINK, "FlinkDeployment", "shop", "")


async def test_the_configmap_alias_runs_on_the_same_objects_with_its_compare_and_swap(world: World) -> None:
    alias = ConfigMapAlias()  # its client comes from load_api_client: the fake's
    done = await alias.cutover("shop", "v", "topic", "t.v1", expected=None)
    assert (done.from_table, done.to_table) == (None, "t.v1")
    stored = world.kube.object("v1", "ConfigMap", "shop", "v")
    assert stored is not None and stored["data"] == {"topic": "t.v1"}
    assert await alias.target("shop", "v", "topic") == "t.v1"
    raw = client.CoreV1Api(fake_api_client()).read_namespaced_config_map("v", "shop")  # parsed by the client
    assert raw.metadata.resource_version == stored["metadata"]["resourceVersion"]


async def test_kafka_answers_as_the_broker_does(world: World) -> None:
    world.kafka.create_topic("clicks", 2, {"retention.ms": "1000"})
    world.kafka.produce("clicks", 4, timestamp_ms=1_000)
    world.kafka.produce("clicks", 2, timestamp_ms=2_000)
    admin = world.kafka.admin(world.bootstrap)

    facts = await admin.describe_topics(["clicks"])
    assert (facts["clicks"].partitions, facts["clicks"].retention_ms, facts["clicks"].cleanup_policy) == (
        2,
        1000,
        "delete",
    )
    assert await admin.offsets_for_time([("clicks", 0)], 1_500) == {("clicks", 0): 2}
    assert await admin.offsets_for_time([("clicks", 0)], 9_000) == {("clicks", 0): -1}
    start = await admin.resolve_start(["clicks"], timestamp_ms=9_000)
    assert start.offsets == {("clicks", 0): 3, ("clicks", 1): 3}
    assert start.past_end == [("clicks", 0), ("clicks", 1)]
    with pytest.raises(UnknownTopic):
        await admin.partitions(["nope"])

    await admin.seed_group("g", {("clicks", 0): 1})
    await admin.seed_group("g", {("clicks", 0): 1})  # the same offsets again: nothing to do
    with pytest.raises(GroupInUse):
        await admin.seed_group("g", {("clicks", 0): 2})
