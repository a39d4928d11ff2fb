"""controllers/known.py: a look takes the job it last read or wrote while the watch shows that version."""

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


@pytest.mark.parametrize(
    ("name", "remembered", "watched", "served"),
    [
        ("nothing read yet: GET", None, "7", None),
        ("read, the watch shows nothing yet: GET", "7", None, None),
        ("the watch shows the version read: the copy", "7", "7", "7"),
        ("the watch shows a later write of anyone: GET", "7", "8", None),
        ("the watch has not shown our write yet: GET", "9", "8", None),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_look_takes_the_copy_only_while_the_watch_shows_its_version(
    name: str, remembered: str | None, watched: str | None, served: str | None
) -> None:
    known = Known()
    if remembered:
        known.remember(job(remembered))
    known.watched(KEY, watched)
    found = known.current(KEY)
    assert (found["metadata"]["resourceVersion"] if found else None) == served
    if served:
        assert found == job(served)


def test_a_look_that_changes_its_copy_changes_nothing_kept() -> None:
    known = Known()
    known.remember(job("7"))
    known.watched(KEY, "7")
    first = known.current(KEY)
    assert first is not None
    first["status"]["phase"] = "Upgrading"
    assert known.current(KEY) == job("7")


def test_the_latest_write_replaces_the_copy_and_a_deleted_job_is_forgotten() -> None:
    known = Known()
    known.remember(job("7"))
    known.remember(job("9", phase="Upgrading"))
    known.watched(KEY, "9")
    assert known.current(KEY) == job("9", phase="Upgrading")
    known.forget(KEY)
    assert known.current(KEY) is None
    known.watched(KEY, "9")
    assert known.current(KEY) is None  # nothing kept any more: GET
