"""Benchmark: the operator's lag poll at 1,000 and 10,000 partitions (50 and 500 groups x 20), against the
real test Kafka, next to a naive sequential poll in the same run.

    python benchmarks/lag_poll.py [--bootstrap 127.0.0.1:19092] [--groups 50 500] [--partitions-per-group 20]

Every partition holds 4 plain records and 1 transactional one (so a commit marker too: end offset 6), and
every group has committed offset 3: `end - committed` says 3, the records left are 2. That is the small-lag
case in which the operator recounts the records a reader really has left (LagMonitor._without_markers), so
every poll here takes the path the operator takes, recount included. For each group count, one round after
another of the three polls below (so the machine's load hits them alike), then it prints:

- **cold poll**: every partition's small-lag range is new (the recount's cache is emptied before the poll,
  as when every partition moved since the last poll, or right after a start). As the operator runs it, one
  poll recounts at most `MARKER_RECOUNT_MAX` partitions and leaves the rest to the next polls; printed with
  the polls it takes until every range is recounted, and next to the same poll unbounded (all in one poll);
- **warm poll**: nothing moved since the last poll, so the recount is served from its cache (at rest);
- **naive sequential poll**: for each group in turn, its end offsets then its committed offsets, no recount
  (the plain client's baseline);
- **per-range recount**: one consumer per range, one range after another (the recount before this change),
  timed on `--per-range-sample` ranges and scaled to all of them.

The lag every poll reports is checked (2 per partition; 3, `end - committed`, only for the partitions a
bounded poll has not recounted yet, and exactly as many as the bound leaves), so a fast wrong answer cannot
pass for a fast one.
After each size the benchmark deletes its groups and topics; at the end it prints one table row per size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Mapping

from confluent_kafka import Producer

from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.values import Partition
from kappa.adapters.lag_monitor import MARKER_RECOUNT_MAX, GroupLag, LagMonitor

PLAIN, TRANSACTIONAL, COMMITTED = 4, 1, 3
END = PLAIN + TRANSACTIONAL + 1  # the commit marker takes an offset
LEFT = PLAIN + TRANSACTIONAL - COMMITTED
RAW = END - COMMITTED  # what a partition not recounted yet reports


def produce(bootstrap: str, topics: list[str], partitions: int) -> None:
    plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "enable.idempotence": True})
    for topic in topics:
        for p in range(partitions):
            for _ in range(PLAIN):
                plain.produce(topic, b"x", partition=p)
        plain.poll(0)
    assert plain.flush(60) == 0, "plain records not delivered"
    txn = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "transactional.id": f"bench-{uuid.uuid4().hex}"}
    )
    txn.init_transactions(30)
    txn.begin_transaction()
    for topic in topics:
        for p in range(partitions):
            txn.produce(topic, b"t", partition=p)
        txn.poll(0)
    txn.commit_transaction(60)


def names(groups: int) -> list[tuple[str, str]]:
    run = uuid.uuid4().hex[:6]
    return [(f"bench-{run}-{i}", f"bench-{run}-g{i}") for i in range(groups)]


async def setup(admin: KafkaAdmin, bootstrap: str, pairs: list[tuple[str, str]], partitions: int) -> None:
    groups = len(pairs)
    started = time.perf_counter()
    for i in range(0, len(pairs), 50):  # a single broker takes topic creations in modest batches
        await asyncio.gather(*(admin.ensure_topic(t, partitions=partitions) for t, _ in pairs[i : i + 50]))
    took = time.perf_counter() - started
    print(f"set-up: {groups} topics x {partitions} partitions created in {took:.1f} s")
    await asyncio.to_thread(produce, bootstrap, [t for t, _ in pairs], partitions)
    every = [(t, p) for t, _ in pairs for p in range(partitions)]
    deadline = time.monotonic() + 60
    while set((await admin.end_offsets(every)).values()) != {END}:  # the markers are written after commit
        assert time.monotonic() < deadline, "last stable offsets never reached the commit markers"
        await asyncio.sleep(0.5)
    for i in range(0, len(pairs), 50):
        await asyncio.gather(
            *(
                admin.seed_group(g, {(t, p): COMMITTED for p in range(partitions)})
                for t, g in pairs[i : i + 50]
            )
        )
    print(f"set-up: records and group offsets in place after {time.perf_counter() - started:.1f} s")


async def sequential_poll(admin: KafkaAdmin, pairs: list[tuple[str, str]], partitions: int) -> None:
    for topic, group in pairs:
        await admin.end_offsets([(topic, p) for p in range(partitions)])
        await admin.committed(group)


def check(result: Mapping[str, GroupLag], groups: int, partitions: int, not_recounted: int = 0) -> None:
    """Every partition's lag is LEFT (markers are no records), but for `not_recounted` of them, RAW."""
    lags = [pl.lag for r in result.values() for pl in r.partitions]
    assert len(result) == groups and len(lags) == groups * partitions, (len(result), len(lags))
    assert set(lags) <= {LEFT, RAW}, f"lags {sorted(set(lags))}, expected {LEFT} (markers are no records)"
    assert lags.count(RAW) == not_recounted, f"{lags.count(RAW)} not recounted, expected {not_recounted}"


def ms(seconds: list[float]) -> str:
    return (
        f"median {statistics.median(seconds) * 1000:.0f} ms, min {min(seconds) * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms over {len(seconds)}"
    )


async def measure(
    admin: KafkaAdmin, bootstrap: str, groups: int, n: int, polls: int, sample_size: int
) -> str:
    """Set up `groups` groups of `n` partitions, time the polls side by side, delete them; one table row."""
    pairs = names(groups)
    try:
        await setup(admin, bootstrap, pairs, n)
        monitor = LagMonitor(admin)
        for topic, group in pairs:
            monitor.track(group, [topic])
        monitor.marker_recount_max = None
        check(await monitor.poll(), groups, n)  # first poll: partition lists fetched and cached
        monitor.marker_recount_max = MARKER_RECOUNT_MAX

        total = groups * n
        cold, to_all, unbounded, warm, seq = [], [], [], [], []
        rounds: list[int] = []
        for _ in range(polls):  # one of each per round: the machine's load hits them alike
            monitor._marker_counts.clear()  # every range anew, as when all partitions moved
            started = time.perf_counter()
            result = await monitor.poll()
            cold.append(time.perf_counter() - started)
            left, done = max(0, total - MARKER_RECOUNT_MAX), 1
            check(result, groups, n, left)
            while left:  # the next polls recount the rest, MARKER_RECOUNT_MAX partitions each
                result = await monitor.poll()
                left, done = max(0, left - MARKER_RECOUNT_MAX), done + 1
                check(result, groups, n, left)
            to_all.append(time.perf_counter() - started)
            rounds.append(done)
            monitor._marker_counts.clear()
            monitor.marker_recount_max = None  # every range in one poll: the cold poll before the bound
            started = time.perf_counter()
            result = await monitor.poll()
            unbounded.append(time.perf_counter() - started)
            monitor.marker_recount_max = MARKER_RECOUNT_MAX
            check(result, groups, n)
            started = time.perf_counter()
            result = await monitor.poll()
            warm.append(time.perf_counter() - started)
            check(result, groups, n)
            started = time.perf_counter()
            await sequential_poll(admin, pairs, n)
            seq.append(time.perf_counter() - started)

        sample: list[Partition] = [(t, p) for t, _ in pairs for p in range(n)][:sample_size]
        started = time.perf_counter()
        for part in sample:
            assert (await admin.count_records({part: (COMMITTED, END)}))[part] == LEFT
        per_range = (time.perf_counter() - started) / len(sample)

        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"groups={groups} partitions={total}: end {END}, committed {COMMITTED}, left {LEFT}")
        print(f"  cold poll, at most {MARKER_RECOUNT_MAX} partitions recounted: {ms(cold)}")
        print(f"    polls until every range is recounted: {max(rounds)}, together {ms(to_all)}")
        print(f"  cold poll, every range recounted in one poll (unbounded): {ms(unbounded)}")
        print(f"  warm poll, recount cached:        {ms(warm)}")
        print(f"  naive sequential poll, no recount: {ms(seq)}")
        print(
            f"  per-range recount (before): {per_range * 1000:.1f} ms a range over {len(sample)}, "
            f"so about {per_range * total:.1f} s for all {total}"
        )
        print(f"  load average: {load}")
        med = statistics.median
        return (
            f"| {total:,} | {med(warm):.2f} s | {med(cold):.2f} s (max {max(cold):.2f} s) | {max(rounds)} "
            f"| {med(unbounded):.2f} s | {med(seq):.2f} s | {med(seq) / med(warm):.1f}x | {load} |"
        )
    finally:
        for i in range(0, len(pairs), 50):
            chunk = pairs[i : i + 50]
            await asyncio.gather(*(admin.delete_group(g) for _, g in chunk), return_exceptions=True)
            await asyncio.gather(*(admin.delete_topic(t) for t, _ in chunk), return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser()
    port = os.environ.get("KAPPA_KAFKA_PORT", "19092")
    parser.add_argument("--bootstrap", default=f"127.0.0.1:{port}")
    parser.add_argument("--groups", type=int, nargs="+", default=[50, 500], help="one run per count")
    parser.add_argument("--partitions-per-group", type=int, default=20)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--per-range-sample", type=int, default=100)
    args = parser.parse_args()

    # A loaded single broker can take longer than the operator's 30 s to show 500 new topics.
    admin = KafkaAdmin(args.bootstrap, timeout=120)
    try:
        rows = [
            await measure(
                admin, args.bootstrap, g, args.partitions_per_group, args.polls, args.per_range_sample
            )
            for g in args.groups
        ]
    finally:
        admin.close()
    print(
        "\n| partitions | warm poll (median) | cold poll (bounded) | polls to recount all "
        "| cold poll, unbounded | naive sequential | naive / warm | load average |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    asyncio.run(main())
