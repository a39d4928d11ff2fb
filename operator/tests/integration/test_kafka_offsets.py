"""Kafka facts a replay depends on, against the real broker: start positions, exact lag, lag verdicts,
retention preflight, fell-off-retention detection, and the direct topic backend."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from kappa.adapters import metrics
from kappa.adapters.kafka.values import GroupInUse, KafkaAdapterError, PartitionDecreaseRefused
from kappa.adapters.lag_monitor import LagMonitor
from kappa.machines.lag import LagStatus
from kappa.machines.preflight import ReplayPlan, preflight
from tests.integration.testbed import KafkaTestbed

# ms; records carry explicit timestamps, recent enough that the 7-day default retention keeps them.
BASE = (int(time.time()) - 3600) * 1000


def group() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


def test_a_group_seeded_at_a_timestamp_starts_at_the_first_record_at_or_after_it(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=3)
    # Partition p gets 10 records at BASE + i*1000 + p*400: the first at or after T differs per partition.
    kafka.produce(topic, [(p, BASE + i * 1000 + p * 400) for p in range(3) for i in range(10)])
    at = BASE + 4_500
    expected = {(topic, 0): 5, (topic, 1): 5, (topic, 2): 4}  # 5000 ≥ T; 4400 < T ≤ 5400; 4300 < T ≤ 4800

    start = kafka.run(kafka.admin.resolve_start([topic], timestamp_ms=at))
    name = group()
    kafka.run(kafka.admin.seed_group(name, start.offsets))

    assert kafka.run(kafka.admin.committed(name)) == expected
    assert start.past_end == []


def test_a_timestamp_after_the_last_record_yields_the_end_offsets_and_says_so(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=2)
    kafka.produce(topic, [(p, BASE + i) for p in range(2) for i in range(7)])

    start = kafka.run(kafka.admin.resolve_start([topic], timestamp_ms=BASE + 60_000))

    assert start.offsets == {(topic, 0): 7, (topic, 1): 7}
    assert start.past_end == [(topic, 0), (topic, 1)]
    assert "no record at or after the start time" in start.message


def test_earliest_and_explicit_offsets(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=2)
    kafka.produce(topic, [(p, BASE + i) for p in range(2) for i in range(5)])
    kafka.run(kafka.admin.delete_records({(topic, 1): 2}))

    earliest = kafka.run(kafka.admin.resolve_start([topic], earliest=True))
    explicit = kafka.run(kafka.admin.resolve_start([topic], offsets={(topic, 0): 3, (topic, 1): 4}))

    assert earliest.offsets == {(topic, 0): 0, (topic, 1): 2}
    assert explicit.offsets == {(topic, 0): 3, (topic, 1): 4}
    with pytest.raises(KafkaAdapterError, match=r"missing t-\w+\[1\]"):
        kafka.run(kafka.admin.resolve_start([topic], offsets={(topic, 0): 3}))


def test_a_replay_group_must_be_new(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, BASE + i) for i in range(5)])
    name = group()
    kafka.run(kafka.admin.seed_group(name, {(topic, 0): 2}))
    kafka.run(kafka.admin.seed_group(name, {(topic, 0): 2}))  # re-entry after a crash: same offsets, fine

    with pytest.raises(GroupInUse, match="already has committed offsets"):
        kafka.run(kafka.admin.seed_group(name, {(topic, 0): 0}))

    assert kafka.run(kafka.admin.describe_groups([name]))[name].exists
    assert kafka.run(kafka.admin.delete_group(name)) is True
    assert not kafka.run(kafka.admin.describe_groups([name]))[name].exists
    assert kafka.run(kafka.admin.delete_group(name)) is False


def test_lag_is_produced_minus_consumed_on_every_partition(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=3)
    produced = {0: 10, 1: 20, 2: 30}
    consumed = {0: 3, 1: 7, 2: 30}
    kafka.produce(topic, [(p, BASE + i) for p, n in produced.items() for i in range(n)])
    name = group()
    kafka.consume_and_commit(topic, name, consumed)
    monitor = LagMonitor(kafka.admin)
    monitor.track(name, [topic], labels={"namespace": "ns", "job": "sessionizer", "version": "v1"})

    lag = kafka.run(monitor.poll())[name]

    assert {p.partition: p.lag for p in lag.partitions} == {p: produced[p] - consumed[p] for p in produced}
    assert lag.total == 7 + 13 + 0
    labels = {"namespace": "ns", "job": "sessionizer", "version": "v1", "group": name}
    assert (
        REGISTRY.get_sample_value("kappa_consumer_lag_records", {**labels, "topic": topic, "partition": "1"})
        == 13
    )
    assert REGISTRY.get_sample_value("kappa_consumer_group_lag_records", labels) == 7 + 13


def test_lag_is_exact_across_transaction_markers(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=2)
    kafka.produce(topic, [(0, BASE + i) for i in range(20)], transactional=True)
    kafka.produce(topic, [(1, BASE + i) for i in range(20)], transactional=True)
    # The commit markers are written after commit_transaction returns; wait for the last stable offsets.
    deadline = time.monotonic() + 20
    while (ends := kafka.run(kafka.admin.end_offsets([(topic, 0), (topic, 1)]))) != {
        (topic, 0): 21,
        (topic, 1): 21,
    }:
        assert time.monotonic() < deadline, f"last stable offsets stuck at {ends}"
        time.sleep(0.1)
    # 20 records + the commit marker on each partition

    name = group()
    kafka.consume_and_commit(topic, name, {0: 20, 1: 15})  # commits 20 and 15, after the last record read
    monitor = LagMonitor(kafka.admin)
    monitor.track(name, [topic])
    lag = kafka.run(monitor.poll())[name]

    # Naive end - committed would say 1 and 6: the marker is no record.
    assert lag.lag_of(topic, 0) == 0
    assert lag.lag_of(topic, 1) == 5


def test_a_consumer_that_stops_committing_stalls_then_stops_and_is_ok_once_caught_up(
    kafka: KafkaTestbed,
) -> None:
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, BASE + i) for i in range(50)])
    name = group()
    monitor = LagMonitor(kafka.admin, window=3, stop_after=3.0)
    monitor.track(name, [topic])

    kafka.consume_and_commit(topic, name, {0: 10})
    assert kafka.run(monitor.poll())[name].status.status == LagStatus.OK  # one sample: no trend yet
    kafka.consume_and_commit(topic, name, {0: 10})
    moving = kafka.run(monitor.poll())[name]
    assert moving.status.status == LagStatus.OK, moving.status  # lag falling

    kafka.produce(topic, [(0, BASE + 100 + i) for i in range(5)])  # new data, no more commits
    for _ in range(3):  # until the whole window has seen the offset stand still
        stalled = kafka.run(monitor.poll())[name]
    assert stalled.status.status == LagStatus.STALL, stalled.status
    time.sleep(3.2)
    stopped = kafka.run(monitor.poll())[name]
    assert stopped.status.status == LagStatus.STOP, stopped.status
    assert "no commit for" in stopped.status.reason

    kafka.consume_and_commit(topic, name, {0: 35})  # catches up with the head
    caught_up = kafka.run(monitor.poll())[name]
    assert caught_up.total == 0
    assert caught_up.status.status == LagStatus.OK


def test_preflight_refuses_a_start_already_deleted_by_retention(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=1, **{"segment.ms": "100"})
    kafka.produce(topic, [(0, int(time.time() * 1000)) for _ in range(5)])
    time.sleep(0.3)  # the next record rolls a new segment
    kafka.produce(topic, [(0, int(time.time() * 1000)) for _ in range(5)])
    planned_start = {(topic, 0): 0}
    # Retention now deletes the first segment; the broker checks every 500 ms.
    kafka.run(kafka.admin.alter_topic_config(topic, {"retention.ms": "200"}))
    deadline = time.monotonic() + 30
    while kafka.run(kafka.admin.log_start_offsets([(topic, 0)]))[(topic, 0)] == 0:
        assert time.monotonic() < deadline, "retention did not delete the first segment"
        time.sleep(0.2)
    kafka.run(kafka.admin.alter_topic_config(topic, {"retention.ms": "3600000"}))
    log_start = kafka.run(kafka.admin.log_start_offsets([(topic, 0)]))[(topic, 0)]  # 5, or 10 if both rolled

    topics = kafka.run(kafka.admin.describe_topics([topic]))
    start = kafka.run(kafka.admin.resolve_start([topic], offsets=planned_start))
    facts = kafka.run(kafka.admin.partition_facts(start))
    result = preflight(topics, facts, ReplayPlan(records_per_second=100), now_ms=int(time.time() * 1000))

    assert not result.passed
    failure = result.failures()[0]
    assert failure.reason == "StartDeletedByRetention"
    assert f"{topic}[0]: start 0 < log start {log_start}" in failure.message

    retained = kafka.run(kafka.admin.resolve_start([topic], earliest=True))
    facts = kafka.run(kafka.admin.partition_facts(retained))
    ok = preflight(topics, facts, ReplayPlan(records_per_second=100), now_ms=int(time.time() * 1000))
    assert ok.passed, ok.failures()
    assert {c.name: c.severity for c in ok.checks}["FitsRetention"] == "OK"


def test_preflight_flags_a_compacted_source_and_a_taken_output(kafka: KafkaTestbed) -> None:
    source = kafka.topic(partitions=1, **{"cleanup.policy": "compact"})
    taken = kafka.topic(partitions=1)
    kafka.produce(source, [(0, BASE)])
    topics = kafka.run(kafka.admin.describe_topics([source]))
    start = kafka.run(kafka.admin.resolve_start([source], earliest=True))
    facts = kafka.run(kafka.admin.partition_facts(start))
    exists = kafka.run(kafka.admin.topic_exists(taken))

    result = preflight(topics, facts, ReplayPlan(None, output_topic=taken, output_exists=exists), now_ms=BASE)

    by_name = {c.name: c for c in result.checks}
    assert by_name["SourceNotCompacted"].severity == "Warning"
    assert by_name["OutputFree"].reason == "OutputExists"
    assert not result.passed


def test_moving_the_log_start_during_a_replay_is_reported(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=2)
    kafka.produce(topic, [(p, BASE + i) for p in range(2) for i in range(10)])
    name = group()
    kafka.run(kafka.admin.seed_group(name, {(topic, 0): 0, (topic, 1): 8}))
    monitor = LagMonitor(kafka.admin)
    monitor.track(name, [topic], labels={"namespace": "ns", "job": "j", "version": "v2"})
    assert kafka.run(monitor.poll())[name].fell_off == []

    kafka.run(kafka.admin.delete_records({(topic, 0): 6, (topic, 1): 6}))
    lag = kafka.run(monitor.poll())[name]

    assert lag.fell_off == [((topic, 0), 0, 6)]  # partition 1 had already read past offset 6
    labels = {"namespace": "ns", "job": "j", "version": "v2", "group": name}
    assert REGISTRY.get_sample_value("kappa_consumer_fell_off_retention_partitions", labels) == 1


def test_the_direct_topic_backend_creates_idempotently_and_refuses_to_shrink(kafka: KafkaTestbed) -> None:
    name = f"out-{uuid.uuid4().hex[:8]}.v2"
    config = {"retention.ms": "-1", "cleanup.policy": "delete"}

    first = kafka.run(kafka.admin.ensure_topic(name, partitions=3, config=config))
    again = kafka.run(kafka.admin.ensure_topic(name, partitions=3, config=config))

    assert first.created and not again.created
    assert again.partitions_added == 0 and again.configs_changed == ()
    facts = kafka.run(kafka.admin.describe_topics([name]))[name]
    assert (facts.partitions, facts.retention_ms, facts.cleanup_policy) == (3, -1, "delete")

    with pytest.raises(PartitionDecreaseRefused, match="has 3 partitions; Kafka cannot decrease them to 2"):
        kafka.run(kafka.admin.ensure_topic(name, partitions=2, config=config))
    grown = kafka.run(
        kafka.admin.ensure_topic(name, partitions=4, config={**config, "retention.ms": "86400000"})
    )
    assert grown.partitions_added == 1
    assert grown.configs_changed == ("retention.ms",)
    assert kafka.run(kafka.admin.describe_topics([name]))[name].retention_ms == 86400000


def test_an_untracked_group_leaves_no_gauges_behind(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, BASE)])
    name = group()
    monitor = LagMonitor(kafka.admin)
    monitor.track(name, [topic], labels={"namespace": "ns", "job": "gone", "version": "v1"})
    kafka.run(monitor.poll())
    labels = {"namespace": "ns", "job": "gone", "version": "v1", "group": name}
    assert REGISTRY.get_sample_value("kappa_consumer_group_lag_records", labels) == 1

    monitor.untrack(name)
    exported = {s.labels.get("group") for m in metrics.group_lag.collect() for s in m.samples}
    exported |= {s.labels.get("group") for m in metrics.consumer_lag.collect() for s in m.samples}
    assert name not in exported


def test_groups_at_different_offsets_of_one_partition_each_get_their_lag_across_markers(
    kafka: KafkaTestbed,
) -> None:
    """The small-lag recount reads each partition once, from the lowest committed offset of all groups to the
    end, and counts each group's records in that one read."""
    topic = kafka.topic(partitions=2)
    for p in range(2):
        kafka.produce(topic, [(p, BASE + i) for i in range(20)], transactional=True)
    deadline = time.monotonic() + 20
    while kafka.run(kafka.admin.end_offsets([(topic, 0), (topic, 1)])) != {(topic, 0): 21, (topic, 1): 21}:
        assert time.monotonic() < deadline, "last stable offsets never reached 21"
        time.sleep(0.1)
    behind, ahead, done = group(), group(), group()
    kafka.consume_and_commit(topic, behind, {0: 12, 1: 17})
    kafka.consume_and_commit(topic, ahead, {0: 18, 1: 19})
    kafka.consume_and_commit(topic, done, {0: 20, 1: 20})
    monitor = LagMonitor(kafka.admin)
    for name in (behind, ahead, done):
        monitor.track(name, [topic])
    lags = kafka.run(monitor.poll())

    # end - committed would say 9/4, 3/2 and 1/1: each commit marker takes an offset but is no record.
    assert [(lags[n].lag_of(topic, 0), lags[n].lag_of(topic, 1)) for n in (behind, ahead, done)] == [
        (8, 3),
        (2, 1),
        (0, 0),
    ]


def test_a_poll_recounts_at_most_its_bound_of_partitions_and_the_next_polls_the_rest(
    kafka: KafkaTestbed,
) -> None:
    """At 10,000 partitions a poll that finds every range new would read them all (about 1.5 s): it reads
    `marker_recount_max` partitions, those that stayed put first, and the next polls the rest. Until then a
    partition's lag is `end - committed`, the marker counted, and it is not judged on that: a reader parked
    at the end is not called STALL."""
    topic = kafka.topic(partitions=3)
    for p in range(3):
        kafka.produce(topic, [(p, BASE + i) for i in range(20)], transactional=True)
    parts = [(topic, p) for p in range(3)]
    deadline = time.monotonic() + 20
    while kafka.run(kafka.admin.end_offsets(parts)) != dict.fromkeys(parts, 21):
        assert time.monotonic() < deadline, "last stable offsets never reached 21"
        time.sleep(0.1)
    name = group()
    kafka.consume_and_commit(topic, name, {0: 20, 1: 20, 2: 18})  # all read, all read, 2 records left
    monitor = LagMonitor(kafka.admin, marker_recount_max=1)
    monitor.track(name, [topic])

    polls = [kafka.run(monitor.poll())[name] for _ in range(3)]

    assert [[poll.lag_of(topic, p) for p in range(3)] for poll in polls] == [
        [0, 1, 3],  # partition 0 recounted
        [0, 0, 3],  # then 1
        [0, 0, 2],  # then 2
    ]
    assert [poll.status.status for poll in polls] == [LagStatus.OK] * 3


class _TrackingDuringPoll:
    """The real admin, but while the poll waits for the committed offsets a controller tracks one group
    and untracks another, as the StreamJob controller does on the same event loop."""

    def __init__(self, admin: Any, during: Any) -> None:
        self._admin, self._during = admin, during

    def __getattr__(self, name: str) -> Any:
        return getattr(self._admin, name)

    async def committed_many(self, groups: Any) -> Any:
        found = await self._admin.committed_many(groups)
        self._during()
        return found


def test_a_group_tracked_or_untracked_during_a_poll_neither_fails_it_nor_comes_back(
    kafka: KafkaTestbed,
) -> None:
    """A group tracked while a poll waited made the whole poll fail (KeyError), and one untracked then had its
    series exported again by that poll, with no one left to remove them."""
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, BASE + i) for i in range(3)])
    kept, leaving, arriving = group(), group(), group()
    labels = {"namespace": "ns", "job": "during", "version": "v1"}
    monitor = LagMonitor(kafka.admin)
    monitor.track(kept, [topic], labels=labels)
    monitor.track(leaving, [topic], labels={**labels, "version": "v0"})

    def during() -> None:
        monitor.track(arriving, [topic], labels={**labels, "version": "v2"})
        monitor.untrack(leaving)

    monitor.admin = _TrackingDuringPoll(kafka.admin, during)  # type: ignore[assignment]
    lags = kafka.run(monitor.poll())

    assert sorted(lags) == [kept]  # the new one is for the next poll
    exported = {s.labels.get("group") for m in metrics.group_lag.collect() for s in m.samples}
    assert leaving not in exported and kept in exported
    monitor.admin = kafka.admin
    assert kafka.run(monitor.poll())[arriving].total == 3


def test_partitions_added_to_a_topic_already_read_are_read_at_once(kafka: KafkaTestbed) -> None:
    topic = kafka.topic(partitions=1)
    kafka.produce(topic, [(0, BASE + i) for i in range(3)])
    assert kafka.run(kafka.admin.end_offsets([(topic, 0)])) == {(topic, 0): 3}

    kafka.run(kafka.admin.ensure_topic(topic, partitions=3))  # the offset reader's metadata knew 1
    deadline = time.monotonic() + 30
    while len(kafka.run(kafka.admin.partitions([topic]))) < 3:  # the broker's metadata, a moment later
        assert time.monotonic() < deadline, "the added partitions never showed"
        time.sleep(0.1)
    kafka.produce(topic, [(2, BASE + i) for i in range(4)])

    every = [(topic, p) for p in range(3)]
    assert kafka.run(kafka.admin.end_offsets(every)) == {(topic, 0): 3, (topic, 1): 0, (topic, 2): 4}
    assert kafka.run(kafka.admin.log_start_offsets(every)) == dict.fromkeys(every, 0)
