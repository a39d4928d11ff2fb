"""Clickstream for the sessionizer demo: a deterministic synthetic event generator, a Kafka producer (CLI and
library), and an independent pure-Python reference sessionizer to check what the Flink SQL job wrote.

Events are JSON objects ``{"user_id": "u0042", "url": "/p/17", "ts": 1704067212345}``; ``ts`` is the event
time in epoch milliseconds (UTC). The SQL job (``examples/03-streamjob-sessionizer.yaml``, v2 in ``04-...``)
reads it as ``TO_TIMESTAMP_LTZ(ts, 3)`` with ``WATERMARK ... - INTERVAL '5' SECOND`` and writes one row per
session: ``(user_id, session_start, session_end, clicks)`` with ``session_start`` = first click,
``session_end`` = last click + gap (Flink's SESSION window end), both ``timestamp(3)`` in UTC.

The timeline (see ``events``), per user, is built so that the two gaps give clearly different answers:
- clicks inside a session are 2-50 s apart (70 %) or 65-240 s apart (30 %): more than v1's 1 minute, less than
  v2's 5 minutes, so v1 (the bug: ``GAP_V1_MS`` = 1 min) splits sessions that v2 (``GAP_V2_MS`` = 5 min)
  keeps;
- sessions of a user are 15-90 min apart, so both versions agree there;
- each user starts at a random offset within the first hour. Nothing falls in 4-6 min, so no border cases.
With the defaults v1 writes about 4x the rows of v2 (60 000 clicks: 21 982 v1 sessions, 5 695 v2).

Partitions. The topic has ``PARTITIONS`` = 2 partitions. The producer chooses the partition itself,
``crc32(user_id) % partitions`` (not librdkafka's hash), so this module knows which events went where. Every
partition receives its events in event-time order.

Watermarks and which sessions are emitted. Flink's Kafka source (parallelism 1) keeps one watermark per
partition (split), ``max(ts seen in that partition) - 5 s``, and emits their minimum. A session window
[first, last + gap) fires when the watermark reaches ``session_end - 1 ms``. So once Flink has read
everything produced, the rows in PostgreSQL are exactly ``emitted(events, gap_ms)``: the sessions with
``session_end - 1 <= W`` where ``W = min over partitions of (max ts) - 5000`` (``WATERMARK_DELAY_MS``).
Sessions still open stay in Flink's state (and in a savepoint) and are written later, when newer events move
the watermark past them. To close everything, ``ticks(after_ms, partitions)`` gives one event per partition
far in the future (users ``~tick-<n>``); the tick sessions themselves stay open, so they never reach the
table unless later events close them. A partition that never gets a record holds the watermark back forever:
hence one tick per partition rather than ``'scan.watermark.idle-timeout'``, which would make the result
depend on wall-clock timing. (An idle timeout is still the right setting for live traffic where a partition
may go quiet; it is off in the demo SQL.)

Kafka record timestamps are the produce time (the producer does not set them): the synthetic event times are
in 2024, and a broker with time-based retention would delete records whose timestamps are that old at once.

Usage:
    python examples/demo/producer.py --bootstrap 127.0.0.1:19092 --topic clicks --rate 1000 --count 60000
    python examples/demo/producer.py --rate 0 --count 2000000     # as fast as possible (for replays)
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

GAP_V1_MS = 60_000  # v1: the deliberate bug, a 1-minute session gap
GAP_V2_MS = 300_000  # v2: the fix, 5 minutes
WATERMARK_DELAY_MS = 5_000  # WATERMARK FOR event_time AS event_time - INTERVAL '5' SECOND
PARTITIONS = 2
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
PAGES = ["/", "/search", "/cart", "/checkout"] + [f"/p/{i}" for i in range(200)]


@dataclass(frozen=True, order=True)
class Click:
    ts: int
    user_id: str
    url: str

    def json(self) -> bytes:
        return json.dumps({"user_id": self.user_id, "url": self.url, "ts": self.ts}).encode()


@dataclass(frozen=True)
class Session:
    user_id: str
    session_start: int  # epoch ms, first click
    session_end: int  # epoch ms, last click + gap (exclusive end of Flink's window)
    clicks: int

    def row(self) -> tuple[str, datetime, datetime, int]:
        """As psycopg returns a row of the PostgreSQL table (timestamp(3) without time zone, UTC)."""
        return (self.user_id, to_dt(self.session_start), to_dt(self.session_end), self.clicks)


def to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def partition_of(user_id: str, partitions: int = PARTITIONS) -> int:
    return zlib.crc32(user_id.encode()) % partitions


def _user_clicks(seed: int, user: int, start_ms: int) -> Iterator[Click]:
    """An endless, time-ordered click stream of one user."""
    rng = random.Random(f"{seed}:{user}")
    uid = f"u{user:05d}"
    t = start_ms + rng.randrange(3_600_000)
    while True:
        for _ in range(rng.randint(1, 20)):  # one session
            yield Click(t, uid, rng.choice(PAGES))
            t += rng.randint(2_000, 50_000) if rng.random() < 0.7 else rng.randint(65_000, 240_000)
        t += rng.randint(15 * 60_000, 90 * 60_000)  # to the next session (plus the intra gap just added)


def events(n: int, *, seed: int = 42, users: int = 200, start_ms: int = START_MS) -> list[Click]:
    """The first ``n`` clicks of the deterministic timeline, in event-time order (ties by user)."""
    return list(iter_events(seed=seed, users=users, start_ms=start_ms, limit=n))


def iter_events(
    *, seed: int = 42, users: int = 200, start_ms: int = START_MS, limit: int | None = None
) -> Iterator[Click]:
    merged = heapq.merge(*(_user_clicks(seed, u, start_ms) for u in range(users)))
    for i, click in enumerate(merged):
        if limit is not None and i >= limit:
            return
        yield click


def ticks(after_ms: int, partitions: int = PARTITIONS) -> list[Click]:
    """One click per partition at ``after_ms``: moves every partition's watermark there. The user ids are
    chosen so that ``partition_of`` sends each to its own partition."""
    out, n = [], 0
    wanted = set(range(partitions))
    while wanted:
        uid = f"~tick-{n}"
        p = partition_of(uid, partitions)
        if p in wanted:
            wanted.discard(p)
            out.append(Click(after_ms, uid, "/tick"))
        n += 1
    return sorted(out)


def sessionize(events: Iterable[Click], gap_ms: int) -> list[Session]:
    """All sessions, open or closed, as Flink's SESSION window would cut them: a new session starts when a
    click comes ``gap_ms`` or more after the previous click of the same user (windows [t, t+gap) that touch or
    overlap are merged; [a, a+gap) and [a+gap, ...) do not overlap, so exactly ``gap_ms`` apart splits)."""
    by_user: dict[str, list[int]] = {}
    for e in events:
        by_user.setdefault(e.user_id, []).append(e.ts)
    out: list[Session] = []
    for uid, stamps in by_user.items():
        stamps.sort()
        first = last = stamps[0]
        count = 1
        for ts in stamps[1:]:
            if ts < last + gap_ms:
                last, count = ts, count + 1
            else:
                out.append(Session(uid, first, last + gap_ms, count))
                first = last = ts
                count = 1
        out.append(Session(uid, first, last + gap_ms, count))
    return sorted(out, key=lambda s: (s.user_id, s.session_start))


def watermark(
    events: Iterable[Click], partitions: int = PARTITIONS, delay_ms: int = WATERMARK_DELAY_MS
) -> int | None:
    """The watermark Flink reaches after reading ``events`` (None while a partition has no record)."""
    high: dict[int, int] = {}
    for e in events:
        p = partition_of(e.user_id, partitions)
        high[p] = max(high.get(p, e.ts), e.ts)
    if len(high) < partitions:
        return None
    return min(high.values()) - delay_ms


def emitted(events: list[Click], gap_ms: int, partitions: int = PARTITIONS) -> list[Session]:
    """The rows the SQL job has written once it has read ``events``: the sessions the watermark has closed."""
    wm = watermark(events, partitions)
    if wm is None:
        return []
    return [s for s in sessionize(events, gap_ms) if s.session_end - 1 <= wm]


def produce(
    clicks: Iterable[Click],
    *,
    bootstrap: str,
    topic: str,
    rate: float = 1000.0,
    partitions: int = PARTITIONS,
    report_every: float = 0.0,
) -> tuple[int, float]:
    """Produce ``clicks`` at ``rate`` records/s (0: as fast as possible); returns (records, seconds).

    Pacing: records go out in batches every 10 ms against an absolute schedule, so the rate does not drift."""
    from confluent_kafka import Producer  # imported here: the pure functions above need no Kafka client

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.num.messages": 10000,
            "compression.type": "lz4",
            "enable.idempotence": True,
            "queue.buffering.max.messages": 500000,
        }
    )
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    started = time.monotonic()
    last_report = started
    n = 0
    for click in clicks:
        if rate > 0 and n % max(1, int(rate / 100)) == 0:
            due = started + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        while True:
            try:
                producer.produce(
                    topic,
                    click.json(),
                    key=click.user_id.encode(),
                    partition=partition_of(click.user_id, partitions),
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 1000 == 0:
            producer.poll(0)
        if report_every and time.monotonic() - last_report >= report_every:
            last_report = time.monotonic()
            print(f"{n} records, {n / (last_report - started):.0f}/s", file=sys.stderr)
    producer.flush(60)
    elapsed = time.monotonic() - started
    if errors:
        raise RuntimeError(f"{len(errors)} delivery errors, first: {errors[0]}")
    return n, elapsed


def ensure_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    """Create the topic with ``partitions`` partitions unless it exists (then its count must match)."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    meta = admin.list_topics(timeout=10)
    if topic in meta.topics and meta.topics[topic].error is None:
        have = len(meta.topics[topic].partitions)
        if have != partitions:
            raise SystemExit(f"topic {topic} has {have} partitions, this demo needs {partitions}")
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default="127.0.0.1:19092")
    ap.add_argument("--topic", default="clicks")
    ap.add_argument("--rate", type=float, default=1000.0, help="records/s; 0 = as fast as possible")
    ap.add_argument("--count", type=int, default=None, help="stop after this many clicks (default: endless)")
    ap.add_argument("--skip", type=int, default=0, help="start at this position of the timeline")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--tick", action="store_true", help="end with one far-future click per partition")
    args = ap.parse_args()
    ensure_topic(args.bootstrap, args.topic)
    stream: Iterable[Click] = iter_events(
        seed=args.seed, users=args.users, limit=None if args.count is None else args.skip + args.count
    )
    if args.skip:
        import itertools

        stream = itertools.islice(stream, args.skip, None)
    n, secs = produce(stream, bootstrap=args.bootstrap, topic=args.topic, rate=args.rate, report_every=5.0)
    print(f"produced {n} clicks in {secs:.2f} s ({n / secs:.0f}/s)")
    if args.tick:
        last = events(args.skip + n, seed=args.seed, users=args.users)[-1].ts if n else START_MS
        produce(ticks(last + 3_600_000), bootstrap=args.bootstrap, topic=args.topic, rate=0)
        print("produced one tick per partition")


if __name__ == "__main__":
    main()
