"""A Warning repeated every poll is one Event whose count grows (as Kubernetes event series), not an Event per
poll."""

from __future__ import annotations

import pytest

from kappa.adapters.events import Create, EventSeries, Update

A = ("uid-1", "Warning", "KafkaUnreachable", "Kafka at b:9092 unreachable")
B = ("uid-2", "Warning", "KafkaUnreachable", "Kafka at b:9092 unreachable")  # another object
C = ("uid-1", "Warning", "KafkaUnreachable", "Kafka at c:9092 unreachable")  # another message

# (occurrences as (key, at)), the writes expected: "create", ("update", count) or None, one per occurrence
CASES = {
    "first occurrence creates": ([(A, 0)], ["create"]),
    "second writes count 2 at once": ([(A, 0), (A, 10)], ["create", ("update", 2)]),
    "then the count waits for the refresh": (
        [(A, 0), (A, 10), (A, 20), (A, 30), (A, 310), (A, 320)],
        ["create", ("update", 2), None, None, ("update", 5), None],
    ),
    "other object or message is another series": (
        [(A, 0), (B, 1), (C, 2), (A, 3)],
        ["create", "create", "create", ("update", 2)],
    ),
    "a series idle past the window ends; the next occurrence creates": (
        [(A, 0), (A, 10), (A, 700)],
        ["create", ("update", 2), "create"],
    ),
}


def _as_written(write: Create | Update | None) -> object:
    if isinstance(write, Create):
        return "create"
    return ("update", write.count) if write is not None else None


@pytest.mark.parametrize("case", CASES)
def test_event_series(case: str) -> None:
    occurrences, expected = CASES[case]
    series = EventSeries(refresh=300, idle=600)
    written = []
    for key, at in occurrences:
        write = series.observe(key, at)
        if isinstance(write, Create):
            assert series.created(key, f"event-{key[0]}-{at}") is None
        written.append(_as_written(write))
    assert written == expected


def test_occurrences_while_the_create_is_in_flight_are_written_when_it_answers() -> None:
    series = EventSeries()
    assert isinstance(series.observe(A, 0), Create)
    assert series.observe(A, 1) is None and series.observe(A, 2) is None
    late = series.created(A, "event-a")
    assert late == Update("event-a", 3, 2)


def test_a_failed_write_forgets_the_series() -> None:
    series = EventSeries()
    series.observe(A, 0)
    series.forget(A)
    assert isinstance(series.observe(A, 1), Create)


def test_the_cache_is_bounded() -> None:
    series = EventSeries(size=2)
    for i in range(3):
        series.observe((f"uid-{i}", "Warning", "R", "m"), i)
    assert series.count(("uid-0", "Warning", "R", "m")) == 0
    assert series.count(("uid-2", "Warning", "R", "m")) == 1
