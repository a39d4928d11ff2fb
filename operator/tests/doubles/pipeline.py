"""A double of the job inside each FlinkDeployment: while the FKO double reports a deployment RUNNING, a
"sessionizer" really moves records, Kafka input → PostgreSQL table (and optionally an output topic), under the
consumer group the operator injected. The FKO double drives status only; this one makes the data plane real,
so tests can check what a reader sees: sums per user, committed offsets, lag, mixed versions.

What runs, per FlinkDeployment with a `sessionizer.input-topic` (others are not played) whose
`spec.job.state` is `running` and whose FKO state is RUNNING (one run per FKO job id: a redeploy is a new
run):

- Config from `spec.flinkConfiguration`, as `kappa.render.flink.Injection.configuration()` writes it:
  `kappa.bootstrap-servers`, `kappa.group-id`, `kappa.client-id` (the consumer's and producer's client.id,
  so broker quotas on it apply; defaults to the group id), `kappa.startup-mode`, `kappa.startup-timestamp`,
  `kappa.output-table`, `kappa.output-topic`, `kappa.version`; and the job's own keys
  `sessionizer.input-topic` (what makes a deployment a sessionizer), `sessionizer.schema` (default
  `public`) and `sessionizer.bootstrap-servers` (the job's own Kafka connection, in place of the injected one:
  the operator does not configure a Flink job's Kafka security, so a story whose operator reaches Kafka with
  credentials lets its job read through the test Kafka's PLAINTEXT listener). A sessionizer without
  `kappa.bootstrap-servers` or `kappa.group-id` is an error in `errors`.
- Where it starts, per partition: the group's committed offset if there is one (as a restore from a savepoint
  continues where the job was); else per startup mode: earliest-offset and group-offsets → the log start,
  latest-offset → the end, timestamp → the first offset at or after `kappa.startup-timestamp` (the end when
  there is none). Positions found that way are committed at once, as Flink keeps them in its state: a run
  stopped before its first batch restarts from them, not from a later end.
- Like Flink's KafkaSource it assigns the partitions itself (no group membership, so the operator can still
  seed or alter the group's offsets) and reads read_committed.
- Records: value JSON `{"user": str, "amount": number}`. Per user, events += 1 and revenue += amount *
  multiplier; `logic(namespace, version, multiplier=...)` scripts the multiplier (1.0 by default), which is
  how a test says "v1 has a bug that doubles revenue".
- Each batch (up to `batch_size` records) is upserted into `{schema}.{kappa.output-table}` in ONE transaction
  (the table is created if missing: user_id text PRIMARY KEY, events bigint, revenue numeric, version text;
  an existing one, e.g. copied by the operator from another version, is used as it is). Every row written
  carries version = `kappa.version`. With `kappa.output-topic`, one record per input record goes there too
  (key user, value JSON `{"user", "events", "revenue", "version"}` with the user's totals after that record),
  flushed. Only then are the batch's offsets committed, synchronously: at-least-once overall, exactly-once as
  long as a run is only ever stopped between batches, which is how this double stops it.
- Suspended, deleted, or FKO's state not RUNNING (deploying, RESTARTING in a crash loop, FINISHED, FAILED):
  the run finishes its current batch and stops. RUNNING again: a new run from the committed offsets.
- An exception in a run (missing input config, a PostgreSQL error, a poison record) is collected in `errors`
  and the run is restarted after a back-off, as Flink's restart strategy would (a poison record: a crash
  loop).

Questions: `processed`, `running`, `runs`, `active`. Scripts (`reset()` clears them): `logic`, `pace`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from psycopg import sql

from tests.doubles.double import Double
from tests.doubles.fko import FLINK_DEPLOYMENTS, FakeFlinkOperator
from tests.doubles.kube_watch import Key, Obj, key_of

log = logging.getLogger(__name__)

Identity = tuple[str, str | None]
"""(FlinkDeployment uid, FKO job id): a new job id is a new run, as a redeploy is."""


@dataclass(frozen=True)
class JobConfig:
    """What one run reads from the FlinkDeployment's flinkConfiguration."""

    bootstrap_servers: str
    group_id: str
    client_id: str
    input_topic: str
    startup_mode: str = "group-offsets"
    startup_timestamp_ms: int | None = None
    output_table: str | None = None
    output_topic: str | None = None
    version: str = ""
    schema: str = "public"

    @classmethod
    def of(cls, obj: Obj) -> JobConfig:
        conf: dict[str, Any] = (obj.get("spec") or {}).get("flinkConfiguration") or {}

        def required(key: str) -> str:
            value = conf.get(key)
            if not value:
                raise ValueError(f"flinkConfiguration has no {key}")
            return str(value)

        group = required("kappa.group-id")
        timestamp = conf.get("kappa.startup-timestamp")
        return cls(
            bootstrap_servers=str(
                conf.get("sessionizer.bootstrap-servers") or required("kappa.bootstrap-servers")
            ),
            group_id=group,
            client_id=str(conf.get("kappa.client-id") or group),
            input_topic=required("sessionizer.input-topic"),
            startup_mode=str(conf.get("kappa.startup-mode") or "group-offsets"),
            startup_timestamp_ms=int(timestamp) if timestamp else None,
            output_table=conf.get("kappa.output-table") or None,
            output_topic=conf.get("kappa.output-topic") or None,
            version=str(conf.get("kappa.version") or ""),
            schema=str(conf.get("sessionizer.schema") or "public"),
        )


@dataclass
class _Run:
    """One run of the job: a thread with its own consumer, producer and database connection."""

    key: Key
    identity: Identity
    config: JobConfig
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    failed: bool = False


@dataclass
class _History:
    """Per deployment name, over all its runs."""

    processed: int = 0
    runs: int = 0
    failures: int = 0
    retry_at: float = 0.0
    state: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    """Totals per user for the output topic when there is no table to return them (Flink's keyed state)."""


class FakePipeline(Double):
    """Runs the sessionizer inside every RUNNING FlinkDeployment of its namespaces; see the module docstring.

    `postgres_uri` is where output tables live (the real job would get it from its own configuration).
    """

    resource = FLINK_DEPLOYMENTS

    def __init__(
        self,
        kubeconfig: Path | str,
        fko: FakeFlinkOperator,
        postgres_uri: str,
        *,
        namespaces: Iterable[str] | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.1,
        tick: float = 0.05,
        retry_delay: float = 1.0,
    ) -> None:
        super().__init__(kubeconfig, namespaces=namespaces)
        self.fko = fko
        self.postgres_uri = postgres_uri
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.tick = tick
        self.retry_delay = retry_delay
        self._runs: dict[Key, _Run] = {}
        """The current (or stopping) run per deployment; at most one at a time, so no two share a group."""
        self._history: dict[Key, _History] = {}
        self._multipliers: dict[tuple[str, str], float] = {}
        self._paces: dict[Key, float] = {}

    # --- scripts -----------------------------------------------------------------------------------------

    def logic(self, namespace: str, version: str, *, multiplier: float = 1.0) -> None:
        """What version `version`'s job does in `namespace`: revenue += amount * multiplier. Takes effect
        from the next batch."""
        with self._lock:
            self._multipliers[(namespace, version)] = multiplier

    def pace(self, namespace: str, name: str, records_per_second: float | None) -> None:
        """Slow this deployment's job down to about `records_per_second` (smaller batches, a pause after
        each), so a test can watch a replay half-way; None: full speed."""
        with self._lock:
            if records_per_second is None:
                self._paces.pop((namespace, name), None)
            else:
                if records_per_second <= 0:
                    raise ValueError("records_per_second must be positive")
                self._paces[(namespace, name)] = float(records_per_second)

    def reset(self) -> None:
        """Forget every script (between tests). Runs go on as long as their deployments run."""
        with self._lock:
            self._multipliers.clear()
            self._paces.clear()
        self._wake.set()

    # --- questions ---------------------------------------------------------------------------------------

    def processed(self, namespace: str, name: str) -> int:
        """Input records whose batch was committed, over all runs of this deployment name."""
        with self._lock:
            h = self._history.get((namespace, name))
            return h.processed if h else 0

    def running(self, namespace: str | None = None, name: str | None = None) -> bool:  # type: ignore[override]
        """Whether the job of `namespace/name` runs now: its thread is alive, also while it finishes its last
        batch after being told to stop (False only once nothing more will be read). Without arguments, what
        `Double.running` says: the double's own threads are alive."""
        if namespace is None or name is None:
            return self.watcher.alive or self._worker.is_alive()
        with self._lock:
            run = self._runs.get((namespace, name))
            return bool(run and run.thread and run.thread.is_alive())

    def runs(self, namespace: str, name: str) -> int:
        """How many runs of this deployment name have started (1 + restarts, resumes and redeploys)."""
        with self._lock:
            h = self._history.get((namespace, name))
            return h.runs if h else 0

    def active(self, namespace: str) -> list[str]:
        """Deployments in `namespace` with a run whose thread is still alive (also one that is stopping)."""
        with self._lock:
            return sorted(
                name
                for (ns, name), run in self._runs.items()
                if ns == namespace and run.thread is not None and run.thread.is_alive()
            )

    # --- lifecycle ---------------------------------------------------------------------------------------

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop.set()
        deadline = time.monotonic() + timeout
        for run in runs:
            if run.thread is not None:
                run.thread.join(max(0.0, deadline - time.monotonic()))
                if run.thread.is_alive():
                    log.warning("pipeline run %s/%s did not stop within %ss", *run.key, timeout)

    # --- the supervisor: which runs should exist ---------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            try:
                self._supervise()
            except Exception as e:
                self._record_error("pipeline supervisor", e)

    def _wanted(self) -> dict[Key, tuple[Identity, Obj]]:
        wanted: dict[Key, tuple[Identity, Obj]] = {}
        for obj in self.watcher.snapshot():
            key = key_of(obj)
            if not self.manages(key[0]):
                continue
            spec = obj.get("spec") or {}
            if not (spec.get("flinkConfiguration") or {}).get("sessionizer.input-topic"):
                continue  # not a sessionizer: some other job, which this double does not play
            if (spec.get("job") or {}).get("state", "running") != "running":
                continue
            status = self.fko.status(*key) or {}
            job = status.get("jobStatus") or {}
            if job.get("state") != "RUNNING":
                continue
            wanted[key] = ((obj["metadata"]["uid"], job.get("jobId")), obj)
        return wanted

    def _supervise(self) -> None:
        wanted = self._wanted()
        now = time.monotonic()
        to_start: list[_Run] = []
        with self._lock:
            for key, run in list(self._runs.items()):
                alive = run.thread is not None and run.thread.is_alive()
                if not alive:
                    del self._runs[key]
                elif (key not in wanted or wanted[key][0] != run.identity) and not run.stop.is_set():
                    log.info(
                        "pipeline %s/%s: stopping run of %s (now %s)",
                        *key,
                        run.identity,
                        wanted[key][0] if key in wanted else "not running",
                    )
                    run.stop.set()  # it finishes its batch; a new run waits until this one is gone
            for key, (identity, obj) in wanted.items():
                if key in self._runs:
                    continue
                history = self._history.setdefault(key, _History())
                if now < history.retry_at:
                    continue
                try:
                    config = JobConfig.of(obj)
                except ValueError as e:
                    self._failed(key, history, f"FlinkDeployment {key[0]}/{key[1]}", e)
                    continue
                run = _Run(key, identity, config)
                log.info("pipeline %s/%s: starting run of %s", *key, identity)
                run.thread = threading.Thread(
                    target=self._run, args=(run,), name=f"FakePipeline-{key[0]}/{key[1]}", daemon=True
                )
                self._runs[key] = run
                history.runs += 1
                to_start.append(run)
        for run in to_start:
            assert run.thread is not None
            run.thread.start()

    def _failed(self, key: Key, history: _History, what: str, e: BaseException) -> None:
        """Record the failure and hold restarts back, longer each time (up to 10 s), as a restart strategy
        with exponential delay does."""
        self._record_error(what, e)
        with self._lock:
            history.failures += 1
            delay = min(10.0, self.retry_delay * 2 ** min(history.failures - 1, 4))
            history.retry_at = time.monotonic() + delay

    # --- one run -----------------------------------------------------------------------------------------

    def _run(self, run: _Run) -> None:
        try:
            _Job(self, run).run()
        except Exception as e:
            with self._lock:
                run.failed = True
                history = self._history.setdefault(run.key, _History())
            self._failed(run.key, history, f"pipeline {run.key[0]}/{run.key[1]}", e)
        else:
            with self._lock:
                self._history.setdefault(run.key, _History()).failures = 0
        finally:
            self._wake.set()

    def _multiplier(self, namespace: str, version: str) -> Decimal:
        with self._lock:
            return Decimal(str(self._multipliers.get((namespace, version), 1.0)))

    def _pace_of(self, key: Key) -> float | None:
        with self._lock:
            return self._paces.get(key)

    def _committed_batch(self, key: Key, count: int, totals: dict[str, tuple[int, Decimal]]) -> None:
        with self._lock:
            history = self._history.setdefault(key, _History())
            history.processed += count
            history.state.update(totals)

    def _state(self, key: Key) -> dict[str, tuple[int, Decimal]]:
        with self._lock:
            history = self._history.get(key)
            return dict(history.state) if history else {}


class _Job:
    """The sessionizer itself, on its run's thread."""

    def __init__(self, pipeline: FakePipeline, run: _Run) -> None:
        self.pipeline = pipeline
        self.run_ = run
        self.config = run.config
        self.namespace, self.name = run.key

    def run(self) -> None:
        c = self.config
        consumer = Consumer(
            {
                "bootstrap.servers": c.bootstrap_servers,
                "group.id": c.group_id,
                "client.id": c.client_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest" if c.startup_mode == "latest-offset" else "earliest",
                "isolation.level": "read_committed",
                "enable.partition.eof": False,
            }
        )
        producer: Producer | None = None
        conn: psycopg.Connection[tuple[Any, ...]] | None = None
        try:
            if c.output_topic:
                producer = Producer(
                    {"bootstrap.servers": c.bootstrap_servers, "client.id": c.client_id, "linger.ms": 5}
                )
            if c.output_table:
                conn = psycopg.connect(self.pipeline.postgres_uri, connect_timeout=10)
                self._ensure_table(conn)
            partitions = self._partitions(consumer)
            if partitions is None:
                return  # stopped while waiting for the input topic
            consumer.assign(self._start_positions(consumer, partitions))
            log.info("pipeline %s/%s: running (%s)", self.namespace, self.name, c)
            self._loop(consumer, producer, conn)
        finally:
            consumer.close()
            if producer is not None:
                producer.flush(5)
            if conn is not None:
                conn.close()

    # --- start-up ----------------------------------------------------------------------------------------

    def _table(self) -> sql.Composed:
        assert self.config.output_table
        return sql.SQL("{}").format(sql.Identifier(self.config.schema, self.config.output_table))

    def _ensure_table(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        statement = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (user_id text PRIMARY KEY, events bigint NOT NULL, "
            "revenue numeric NOT NULL, version text NOT NULL)"
        ).format(self._table())
        try:
            with conn.transaction():
                conn.execute(statement)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            pass  # created by someone else at the same moment: IF NOT EXISTS is not atomic

    def _partitions(self, consumer: Consumer) -> list[int] | None:
        """The input topic's partitions; waits for the topic to exist (None: stopped meanwhile)."""
        topic = self.config.input_topic
        while not self.run_.stop.is_set():
            metadata = consumer.list_topics(topic, timeout=10)
            described = metadata.topics.get(topic)
            if described is not None and described.error is None and described.partitions:
                return sorted(described.partitions)
            if described is not None and described.error is not None:
                code = described.error.code()
                if code not in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.LEADER_NOT_AVAILABLE):
                    raise KafkaException(described.error)
            self.run_.stop.wait(0.5)
        return None

    def _restored_offsets(self, partitions: list[int]) -> dict[int, int]:
        """A Flink job restored from a savepoint resumes at the source positions the savepoint holds, whatever
        its group id. The double's savepoints hold no state, so the positions are the committed offsets of
        the deployment that took the savepoint (as of now: it is suspended, so they no longer move)."""
        fko = self.pipeline.fko
        path = fko.restored_from(self.namespace, self.name)
        if not path:
            return {}
        for obj in self.pipeline.watcher.snapshot():
            meta = obj["metadata"]
            if meta["namespace"] != self.namespace or meta["name"] == self.name:
                continue
            if path not in fko.savepoints(self.namespace, meta["name"]):
                continue
            group = ((obj.get("spec") or {}).get("flinkConfiguration") or {}).get("kappa.group-id")
            if not group:
                return {}
            deadline = time.monotonic() + 10  # its last batch is committed when its run has ended
            while self.pipeline.running(self.namespace, meta["name"]) and time.monotonic() < deadline:
                self.run_.stop.wait(0.05)
            reader = Consumer(
                {
                    "bootstrap.servers": self.config.bootstrap_servers,
                    "group.id": group,
                    "enable.auto.commit": False,
                }
            )
            try:
                wanted = [TopicPartition(self.config.input_topic, p) for p in partitions]
                found = _committed(reader, wanted, self.run_.stop)
            finally:
                reader.close()
            return {tp.partition: tp.offset for tp in found if tp.error is None and tp.offset >= 0}
        return {}

    def _start_positions(self, consumer: Consumer, partitions: list[int]) -> list[TopicPartition]:
        c = self.config
        wanted = [TopicPartition(c.input_topic, p) for p in partitions]
        committed = _committed(consumer, wanted, self.run_.stop)
        start: list[TopicPartition] = []
        fresh: list[TopicPartition] = []
        by_time: dict[int, int] = {}
        if c.startup_mode == "timestamp" and c.startup_timestamp_ms is not None:
            wanted = [TopicPartition(c.input_topic, p, c.startup_timestamp_ms) for p in partitions]
            by_time = {tp.partition: tp.offset for tp in consumer.offsets_for_times(wanted, timeout=10)}
        restored = self._restored_offsets(partitions)
        for tp in committed:
            if tp.error is not None:
                raise KafkaException(tp.error)
            if tp.offset >= 0:
                start.append(TopicPartition(tp.topic, tp.partition, tp.offset))
                continue
            if tp.partition in restored:  # started from another deployment's savepoint: its positions
                position = TopicPartition(tp.topic, tp.partition, restored[tp.partition])
                start.append(position)
                fresh.append(position)
                continue
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            if c.startup_mode == "latest-offset":
                offset = high
            elif c.startup_mode == "timestamp" and c.startup_timestamp_ms is not None:
                found = by_time.get(tp.partition, OFFSET_END)
                offset = high if found < 0 else found
            else:  # earliest-offset, group-offsets without a committed offset
                offset = low
            position = TopicPartition(tp.topic, tp.partition, offset)
            start.append(position)
            fresh.append(position)
        if fresh:
            _commit(consumer, fresh, self.run_.stop)
        return start

    # --- the loop ----------------------------------------------------------------------------------------

    def _loop(
        self,
        consumer: Consumer,
        producer: Producer | None,
        conn: psycopg.Connection[tuple[Any, ...]] | None,
    ) -> None:
        key = self.run_.key
        next_at = time.monotonic()
        while not self.run_.stop.is_set():
            rate = self.pipeline._pace_of(key)
            size = (
                self.pipeline.batch_size
                if rate is None
                else max(1, min(self.pipeline.batch_size, int(rate / 4)))
            )
            messages = consumer.consume(size, timeout=self.pipeline.poll_timeout)
            records: list[tuple[str, Decimal]] = []
            offsets: dict[int, int] = {}
            for m in messages:
                error = m.error()
                if error is not None:
                    if error.fatal() or not error.retriable():
                        raise KafkaException(error)
                    log.warning("pipeline %s/%s: %s", *key, error)
                    continue
                partition, offset = m.partition(), m.offset()
                assert partition is not None and offset is not None
                records.append(_parse(m.value()))
                offsets[partition] = max(offsets.get(partition, -1), offset + 1)
            if offsets:
                self._process(records, consumer, producer, conn, offsets)
            if rate is not None and records:
                next_at = max(next_at, time.monotonic() - 1.0) + len(records) / rate
                self.run_.stop.wait(max(0.0, next_at - time.monotonic()))

    def _process(
        self,
        records: list[tuple[str, Decimal]],
        consumer: Consumer,
        producer: Producer | None,
        conn: psycopg.Connection[tuple[Any, ...]] | None,
        offsets: dict[int, int],
    ) -> None:
        """One batch: the table in one transaction, then the output topic flushed, then the offsets."""
        c = self.config
        multiplier = self.pipeline._multiplier(self.namespace, c.version)
        deltas: dict[str, tuple[int, Decimal]] = {}
        for user, amount in records:
            events, revenue = deltas.get(user, (0, Decimal(0)))
            deltas[user] = (events + 1, revenue + amount * multiplier)
        users = sorted(deltas)  # one lock order for every writer of the table
        if conn is not None:
            with conn.transaction():
                cur = conn.execute(
                    sql.SQL(
                        "INSERT INTO {} AS t (user_id, events, revenue, version) "
                        "SELECT u, e, r, %s "
                        "FROM unnest(%s::text[], %s::bigint[], %s::numeric[]) AS x(u, e, r) "
                        "ON CONFLICT (user_id) DO UPDATE SET events = t.events + excluded.events, "
                        "revenue = t.revenue + excluded.revenue, version = excluded.version "
                        "RETURNING user_id, events, revenue"
                    ).format(self._table()),
                    (
                        c.version,
                        users,
                        [deltas[u][0] for u in users],
                        [deltas[u][1] for u in users],
                    ),
                )
                totals = {str(u): (int(e), Decimal(r)) for u, e, r in cur.fetchall()}
        else:
            state = self.pipeline._state(self.run_.key)
            totals = {}
            for u in users:
                events, revenue = state.get(u, (0, Decimal(0)))
                totals[u] = (events + deltas[u][0], revenue + deltas[u][1])
        if producer is not None:
            self._produce(producer, records, multiplier, deltas, totals)
        _commit(
            consumer,
            [TopicPartition(c.input_topic, p, o) for p, o in sorted(offsets.items())],
            self.run_.stop,
        )
        self.pipeline._committed_batch(self.run_.key, len(records), totals)

    def _produce(
        self,
        producer: Producer,
        records: list[tuple[str, Decimal]],
        multiplier: Decimal,
        deltas: dict[str, tuple[int, Decimal]],
        totals: dict[str, tuple[int, Decimal]],
    ) -> None:
        """One record per input record, with the user's totals just after it (rolled back from the batch's
        end totals)."""
        c = self.config
        assert c.output_topic
        running = {u: (totals[u][0] - d[0], totals[u][1] - d[1]) for u, d in deltas.items()}
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        for user, amount in records:
            events, revenue = running[user]
            running[user] = events, revenue = events + 1, revenue + amount * multiplier
            # revenue as an exact JSON number: json.dumps would need a float, and floats round.
            value = (
                f'{{"user": {json.dumps(user)}, "events": {events}, "revenue": {revenue}, '
                f'"version": {json.dumps(c.version)}}}'
            )
            while True:
                try:
                    producer.produce(
                        c.output_topic, key=user.encode(), value=value.encode(), on_delivery=delivered
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
        left = producer.flush(30)
        if left or failures:
            raise RuntimeError(f"output topic {c.output_topic}: {left} undelivered, errors {failures[:3]}")


_COORDINATOR_BUSY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
}


def _committed(
    consumer: Consumer, wanted: list[TopicPartition], stop: threading.Event, timeout: float = 30.0
) -> list[TopicPartition]:
    """committed(), asked again while the group coordinator moves or loads, as a Flink job's Kafka client
    does: on a broker that has just started, the offsets topic is not ready at once."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return list(consumer.committed(wanted, timeout=10))
        except KafkaException as exc:
            if exc.args[0].code() not in _COORDINATOR_BUSY or time.monotonic() > deadline:
                raise
        stop.wait(0.2)


def _commit(
    consumer: Consumer, offsets: list[TopicPartition], stop: threading.Event, timeout: float = 30.0
) -> None:
    """A synchronous commit, asked again while the coordinator is busy: the batch is already in the table, so
    giving up here would count it twice on the restart."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
            return
        except KafkaException as exc:
            if exc.args[0].code() not in _COORDINATOR_BUSY or time.monotonic() > deadline:
                raise
        stop.wait(0.2)


def _parse(value: bytes | None) -> tuple[str, Decimal]:
    """A poison record fails the run, as a deserialization error fails a Flink job."""
    event = json.loads(value or b"", parse_float=Decimal)
    user, amount = event["user"], event["amount"]
    if not isinstance(user, str) or isinstance(amount, bool) or not isinstance(amount, int | Decimal):
        raise ValueError(f"not a sessionizer event: {value!r}")
    return user, Decimal(amount)
