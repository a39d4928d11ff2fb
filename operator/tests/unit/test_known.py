"""controllers/known.py: the copy of a StreamJob a look takes instead of a GET, never older than what the
operator last wrote."""

from __future__ import annotations

from typing import Any

import pytest

from kappa.controllers.known import Known

KEY = ("ns", "job")


def job(version: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "job", "resourceVersion": version},
        "spec": {"version": "v1"},
        "status": {"phase": phase},
    }


# Steps: ("watch", version, phase): a watch event; ("answer", version, phase): a write's or a GET's answer.
CASES = [
    ("listed at start: the watch's copy", [("watch", "7", "Running")], ("7", "Running")),
    (
        "another writer's event, in step: kept",
        [("watch", "7", "Running"), ("watch", "8", "Failed")],
        ("8", "Failed"),
    ),
    ("our write, not shown yet: GET", [("watch", "7", "Running"), ("answer", "9", "Upgrading")], None),
    (
        "the watch shows our write: the write's copy",
        [("watch", "7", "Running"), ("answer", "9", "Upgrading"), ("watch", "9", "Upgrading")],
        ("9", "Upgrading"),
    ),
    (
        "an event older than our write: not kept, GET",
        [("answer", "9", "Upgrading"), ("watch", "8", "Running")],
        None,
    ),
    (
        "older event, then ours: the write's copy",
        [("answer", "9", "Upgrading"), ("watch", "8", "Running"), ("watch", "9", "Upgrading")],
        ("9", "Upgrading"),
    ),
    (
        "our write skipped by the watch: GET, then its answer",
        [("answer", "9", "Upgrading"), ("watch", "10", "Upgrading"), ("answer", "10", "Upgrading")],
        ("10", "Upgrading"),
    ),
    (
        "a GET ahead of the watch: GET until the watch shows it",
        [("watch", "7", "Running"), ("answer", "10", "Upgrading"), ("watch", "8", "Running")],
        None,
    ),
    ("nothing seen: GET", [], None),
]


@pytest.mark.parametrize(("name", "steps", "served"), CASES, ids=[c[0] for c in CASES])
def test_a_look_takes_a_copy_never_older_than_the_operators_last_write(
    name: str, steps: list[tuple[str, str, str]], served: tuple[str, str] | None
) -> None:
    known = Known()
    for source, version, phase in steps:
        if source == "watch":
            known.watched(KEY, job(version, phase))
        else:
            known.remember(job(version, phase))
    assert known.current(KEY) == (job(*served) if served else None)


def test_a_look_that_changes_its_copy_changes_nothing_kept() -> None:
    known = Known()
    known.watched(KEY, job("7"))
    first = known.current(KEY)
    assert first is not None
    first["status"]["phase"] = "Upgrading"
    assert known.current(KEY) == job("7")


def test_field_ownership_is_not_kept_and_a_deleted_job_is_forgotten() -> None:
    known = Known()
    owned = job("7")
    owned["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    known.watched(KEY, owned)
    assert known.current(KEY) == job("7")
    assert owned["metadata"]["managedFields"]  # the watch's object is not changed
    known.forget(KEY)
    assert known.current(KEY) is None
