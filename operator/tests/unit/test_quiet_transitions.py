"""A component that is down is said once: one line when it stops answering, one when it answers again."""

from __future__ import annotations

import pytest

from kappa.adapters.kafka.health import Reachability
from kappa.adapters.postgres import server_of, unavailable

# (observations as (ok, at), the lines expected: (down?, text it contains) per transition, in order)
CASES: dict[str, tuple[list[tuple[bool, float]], list[tuple[bool, str]]]] = {
    "first success says nothing": ([(True, 0)], []),
    "steady up says nothing": ([(True, 0), (True, 10), (True, 20)], []),
    "first failure goes down": ([(False, 0)], [(True, "Kafka at b:9092 unreachable: refused")]),
    "failures while down are counted, not said": (
        [(False, 0), (False, 0.1), (False, 0.2), (False, 60)],
        [(True, "unreachable: refused")],
    ),
    "up, down, retries, up": (
        [(True, 0), (False, 5), (False, 6), (False, 7), (True, 65)],
        [(True, "unreachable"), (False, "answers again, after 60s and 3 failure(s)")],
    ),
    "down, up, down again: said each time": (
        [(False, 0), (True, 10), (False, 20), (True, 30)],
        [(True, "unreachable"), (False, "after 10s"), (True, "unreachable"), (False, "after 10s")],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_one_line_per_change_of_state(case: str) -> None:
    observations, expected = CASES[case]
    health = Reachability("Kafka at b:9092")
    said = [t for ok, at in observations if (t := health.observe(ok, "refused", at)) is not None]
    assert [t.down for t in said] == [down for down, _ in expected]
    assert all(text in t.message for t, (_, text) in zip(said, expected, strict=True))


def test_the_reason_is_kept_while_down_and_dropped_when_up() -> None:
    health = Reachability("lag poll of b:9092", failing="failing")
    transition = health.observe(False, "timed out", 0)
    assert transition is not None and transition.message == "lag poll of b:9092 failing: timed out"
    assert health.observe(False, "other words", 1) is None
    assert (health.up, health.reason, health.failures) == (False, "timed out", 2)
    health.observe(True, now=2)
    assert (health.up, health.reason, health.failures) == (True, "", 0)


POSTGRES = [
    ("postgresql://kappa:s3cret@db.example:6543/serving", "db.example:6543"),
    ("host=db port=5433 user=kappa password=s3cret", "db:5433"),
    ("postgresql://kappa:s3cret@10.0.0.1/serving", "10.0.0.1:5432"),
]


@pytest.mark.parametrize(("uri", "server"), POSTGRES)
def test_a_postgres_outage_names_host_and_port_never_the_password(uri: str, server: str) -> None:
    assert server_of(uri) == server
    error = unavailable(uri, OSError("connection to server failed: Connection refused (s3cret)\n\tIs it up?"))
    assert str(error).startswith(f"PostgreSQL at {server} unreachable: connection to server failed")
    assert "s3cret" not in str(error) and "kappa" not in str(error) and "\n" not in str(error)
