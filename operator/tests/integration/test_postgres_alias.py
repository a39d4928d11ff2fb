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

from kappa.adapters.alias import AliasMoved
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
