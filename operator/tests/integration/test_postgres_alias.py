"""A MaterializedView's PostgreSQL alias: readers never see a missing, empty or mixed answer while it is
switched, and a view repointed by hand is never overwritten."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable
from kappa.adapters.postgres import PostgresAlias


@pytest.fixture
def schema(postgres_uri: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        for version, rows in (("v1", 50), ("v2", 60)):
            conn.execute(f"CREATE TABLE {name}.sessions_{version} (version text, user_id text, clicks int)")
            conn.execute(
                f"INSERT INTO {name}.sessions_{version} SELECT %s, 'u' || i, i FROM generate_series(1, %s) i",
                (version, rows),
            )
    yield name
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_a_reader_at_over_100_queries_per_second_never_sees_a_half_built_answer(
    postgres_uri: str, schema: str
) -> None:
    alias = PostgresAlias(postgres_uri)
    run(alias.cutover(schema, "sessions", "sessions_v1", expected=None))
    answers: list[tuple[float, list[tuple[str, int]]]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(postgres_uri, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    rows = conn.execute(
                        f"SELECT version, count(*) FROM {schema}.sessions GROUP BY version"
                    ).fetchall()
                    answers.append((time.monotonic(), [(str(v), int(n)) for v, n in rows]))
                except psycopg.Error as exc:
                    errors.append(repr(exc))
                time.sleep(0.002)

    thread = threading.Thread(target=reader)
    started = time.monotonic()
    thread.start()
    time.sleep(1.5)
    result = run(alias.cutover(schema, "sessions", "sessions_v2", expected="sessions_v1"))
    time.sleep(1.5)
    stop.set()
    thread.join()
    elapsed = time.monotonic() - started

    assert errors == []
    assert all(len(rows) == 1 for _, rows in answers), "an answer mixed versions or was empty"
    versions = [rows[0][0] for _, rows in answers]
    assert versions[0] == "v1" and versions[-1] == "v2"
    switch = versions.index("v2")
    assert set(versions[:switch]) == {"v1"} and set(versions[switch:]) == {"v2"}, "flapped between versions"
    assert {rows[0] for _, rows in answers} == {("v1", 50), ("v2", 60)}
    rate = len(answers) / elapsed
    assert rate >= 100, f"reader managed only {rate:.0f} queries/s"
    assert (result.from_table, result.to_table, result.attempts) == ("sessions_v1", "sessions_v2", 1)
    print(f"\n{len(answers)} reads at {rate:.0f}/s, cutover {result.duration_ms} ms, 0 errors")


def test_the_cutover_refuses_a_view_repointed_by_hand_and_changes_nothing(
    postgres_uri: str, schema: str
) -> None:
    alias = PostgresAlias(postgres_uri)
    run(alias.cutover(schema, "sessions", "sessions_v1", expected=None))
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {schema}.sessions_hotfix (version text, user_id text, clicks int)")
        conn.execute(f"CREATE OR REPLACE VIEW {schema}.sessions AS SELECT * FROM {schema}.sessions_hotfix")

    with pytest.raises(AliasMoved, match="reads sessions_hotfix, not sessions_v1 as expected"):
        run(alias.cutover(schema, "sessions", "sessions_v2", expected="sessions_v1"))
    assert run(alias.target(schema, "sessions")) == "sessions_hotfix"


def test_an_outage_reads_as_one_and_never_as_a_repointed_view(postgres_uri: str, schema: str) -> None:
    """A server that refuses the connection, or ends the session mid-switch, is BackendUnavailable (an
    outage: ask again), never AliasMoved; and a switch cut off that way changed nothing."""
    alias = PostgresAlias(postgres_uri, connect_timeout=2)
    run(alias.cutover(schema, "sessions", "sessions_v1", expected=None))
    closed = PostgresAlias("postgresql://kappa@127.0.0.1:1/kappa", connect_timeout=2)
    for call in (closed.target(schema, "sessions"), closed.cutover(schema, "sessions", "x", expected=None)):
        with pytest.raises(BackendUnavailable, match=r"PostgreSQL at 127\.0\.0\.1:1 unreachable"):
            run(call)

    report = psycopg.connect(postgres_uri)  # a reader's open transaction holds the switch at the lock
    report.execute(f"SELECT count(*) FROM {schema}.sessions").fetchone()
    admin = psycopg.connect(postgres_uri, autocommit=True)

    def terminate_the_waiting_switch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pids = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'LOCK TABLE%'"
            ).fetchall()
            if pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pids[0][0],))
                return
            time.sleep(0.05)

    killer = threading.Thread(target=terminate_the_waiting_switch)
    killer.start()
    try:
        with pytest.raises(BackendUnavailable, match="terminating connection"):
            run(alias.cutover(schema, "sessions", "sessions_v2", expected="sessions_v1", lock_timeout="10s"))
    finally:
        killer.join()
        report.close()
        admin.close()
    assert run(alias.target(schema, "sessions")) == "sessions_v1"


def test_a_switch_held_up_by_a_reader_tries_again_and_says_so_when_it_never_gets_the_lock(
    postgres_uri: str, schema: str
) -> None:
    """A reader's open transaction on the view holds the switch at its lock; each try gives up after
    lock_timeout and the next one follows the one retry policy (adapters/retry.py: 0.1 s, doubling). A reader
    that finishes lets a later try through (attempts > 1); one that never does ends in an AliasError that
    says how long it tried, with the view unchanged."""
    alias = PostgresAlias(postgres_uri)
    run(alias.cutover(schema, "sessions", "sessions_v1", expected=None))

    reader = psycopg.connect(postgres_uri)
    reader.execute(f"SELECT count(*) FROM {schema}.sessions").fetchone()  # holds ACCESS SHARE until it ends
    finish = threading.Timer(0.5, reader.rollback)
    finish.start()
    try:
        done = run(
            alias.cutover(schema, "sessions", "sessions_v2", expected="sessions_v1", lock_timeout="100ms")
        )
    finally:
        finish.join()
    assert done.attempts > 1 and not done.already_done
    assert run(alias.target(schema, "sessions")) == "sessions_v2"

    reader.execute(f"SELECT count(*) FROM {schema}.sessions").fetchone()
    try:
        started = time.monotonic()
        with pytest.raises(AliasError, match=r"view .*\.sessions stayed locked for 3 tries of 50ms"):
            run(
                alias.cutover(
                    schema, "sessions", "sessions_v1", expected="sessions_v2", lock_timeout="50ms", retries=2
                )
            )
        assert time.monotonic() - started >= 0.1 + 0.2  # the policy's waits between the three tries
    finally:
        reader.close()
    assert run(alias.target(schema, "sessions")) == "sessions_v2"


def test_a_cutover_done_before_a_crash_is_recognised_not_repeated(postgres_uri: str, schema: str) -> None:
    alias = PostgresAlias(postgres_uri)
    run(alias.cutover(schema, "sessions", "sessions_v1", expected=None))
    first = run(alias.cutover(schema, "sessions", "sessions_v2", expected="sessions_v1"))
    again = run(alias.cutover(schema, "sessions", "sessions_v2", expected="sessions_v1"))
    assert (first.already_done, again.already_done) == (False, True)
    assert run(alias.target(schema, "sessions")) == "sessions_v2"


def test_versions_with_different_columns_still_switch_in_one_transaction(
    postgres_uri: str, schema: str
) -> None:
    alias = PostgresAlias(postgres_uri)
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {schema}.sessions_v3 (user_id text, total bigint)"
        )  # v1's columns are gone
        conn.execute(f"INSERT INTO {schema}.sessions_v3 VALUES ('u1', 7)")
    run(alias.cutover(schema, "sessions", "sessions_v1", expected=None))
    run(alias.cutover(schema, "sessions", "sessions_v3", expected="sessions_v1"))
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        assert conn.execute(f"SELECT * FROM {schema}.sessions").fetchall() == [("u1", 7)]


@pytest.fixture
def versions(postgres_uri: str) -> Iterator[str]:
    """Two versions of a sessions table that differ in 3 of 50 users' clicks, and carry their version."""
    name = f"t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
        for version in ("v1", "v2"):
            conn.execute(
                f"CREATE TABLE {name}.s_{version} (user_id text, day int, clicks int, version text, "
                "PRIMARY KEY (user_id, day))"
            )
            conn.execute(
                f"INSERT INTO {name}.s_{version} SELECT 'u' || i, 1, "
                f"CASE WHEN %s = 'v2' AND i <= 3 THEN i + 100 ELSE i END, %s FROM generate_series(1, 50) i",
                (version, version),
            )
    yield name
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


def test_a_sampled_key_diff_finds_the_rows_that_differ_by_a_composite_key(
    postgres_uri: str, versions: str
) -> None:
    alias = PostgresAlias(postgres_uri)
    sampled, differing, examples = run(
        alias.key_diff(versions, "s_v1", "s_v2", sample=1000, ignore=["version"])
    )
    assert (sampled, differing) == (50, 3)
    assert {e.split("\x1f")[0] for e in examples} == {"u1", "u2", "u3"}
    # Without ignoring the column naming the version, every row differs.
    assert run(alias.key_diff(versions, "s_v1", "s_v2", sample=1000, ignore=[]))[1] == 50


def test_sql_checks_are_read_only_bounded_and_must_answer_one_boolean(
    postgres_uri: str, versions: str
) -> None:
    alias = PostgresAlias(postgres_uri)
    assert run(alias.check(versions, "s_v2", "SELECT bool_and(clicks > 0) FROM {table}")) == (
        True,
        "returned true",
    )
    assert run(alias.check(versions, "s_v2", "SELECT max(clicks) < 100 FROM {table}"))[0] is False
    ok, message = run(alias.check(versions, "s_v2", "SELECT count(*) FROM {table}"))
    assert not ok and "one boolean" in message
    ok, message = run(alias.check(versions, "s_v2", "DELETE FROM {table} RETURNING true"))
    assert not ok and "read-only" in message
    ok, message = run(alias.check(versions, "s_v2", "SELECT pg_sleep(5) IS NULL", timeout=0.5))
    assert not ok and "statement timeout" in message
    assert run(alias.count(versions, "s_v2")) == 50  # nothing was deleted


def test_a_new_version_table_starts_as_an_empty_copy_and_the_served_table_is_never_dropped(
    postgres_uri: str, versions: str
) -> None:
    alias = PostgresAlias(postgres_uri)
    assert run(alias.create_like(versions, "s_v3", "s_v1")) is True
    assert run(alias.create_like(versions, "s_v3", "s_v1")) is False  # already there: left alone
    assert run(alias.count(versions, "s_v3")) == 0
    run(alias.cutover(versions, "s", "s_v1", expected=None))
    with pytest.raises(AliasError, match="reads it"):
        run(alias.drop_table(versions, "s", "s_v1"))
    assert run(alias.drop_table(versions, "s", "s_v3")) is True
    assert run(alias.count(versions, "s_v3")) is None
