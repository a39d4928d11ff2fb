"""What a look starts from: the objects the watch-fed indexes keep (less what nothing reads)."""

from __future__ import annotations

from typing import Any

import kopf
import pytest


def test_an_index_keeps_what_looks_read_and_drops_what_none_does() -> None:
    from kappa.controllers.watches import copies, kept, slim

    body: dict[str, Any] = {
        "metadata": {"name": "j-v1", "labels": {"kappa.dev/job": "j"}, "managedFields": [{"manager": "x"}]},
        "spec": {"job": {"state": "running"}},
        "status": {
            "jobStatus": {"state": "RUNNING"},
            "reconciliationStatus": {
                "state": "DEPLOYED",
                "lastReconciledSpec": "{…}",
                "lastStableSpec": "{…}",
            },
        },
    }
    # What a look gets from the index: the object less what nothing reads, a copy of its own.
    index = {("ns", "j"): [kept(kopf.Body(body))]}  # type: ignore[arg-type]
    [got] = copies(index, ("ns", "j"))  # type: ignore[arg-type]
    assert got == slim(body)
    assert got["metadata"] == {"name": "j-v1", "labels": {"kappa.dev/job": "j"}}
    assert got["status"] == {
        "jobStatus": {"state": "RUNNING"},
        "reconciliationStatus": {"state": "DEPLOYED"},
    }
    assert got["spec"] == body["spec"]
    got["spec"]["job"]["state"] = "suspended"
    assert copies(index, ("ns", "j"))[0]["spec"] == {"job": {"state": "running"}}  # type: ignore[arg-type]
    assert copies(index, ("ns", "other")) == []  # type: ignore[arg-type]
    # The body Kopf handed over is left as it was.
    assert body["metadata"]["managedFields"] == [{"manager": "x"}]
    assert "lastStableSpec" in body["status"]["reconciliationStatus"]
    # An object without those fields (a ReplayRun, a new FlinkDeployment) comes through whole.
    bare = {"metadata": {"name": "r"}, "spec": {"jobRef": {"name": "j"}}}
    assert slim(bare) == bare


@pytest.mark.parametrize(
    ("api_version", "compared"),
    [
        ("kappa.dev/v1alpha1", True),  # our kinds have change handlers: Kopf compares their essence
        ("flink.apache.org/v1beta1", False),  # only indexed and followed: nothing compares it
        ("kafka.strimzi.io/v1beta2", False),
    ],
)
def test_kopf_builds_an_essence_only_for_the_kinds_whose_changes_it_compares(
    api_version: str, compared: bool
) -> None:
    import kopf

    from kappa.controllers.runtime import OwnKindsDiffBase

    storage = OwnKindsDiffBase(field="status.kopf.last-handled-configuration")
    body = kopf.Body({"apiVersion": api_version, "kind": "K", "metadata": {"name": "a"}, "spec": {"x": 1}})
    essence = storage.build(body=body)
    assert (essence.get("spec") == {"x": 1}) if compared else essence == {}


@pytest.mark.parametrize(
    ("generation", "observed", "woken", "looks"),
    [
        (1, None, None, True),  # a new StreamJob: no status yet
        (1, None, 1, False),  # its next events (Kopf's finalizer, the look's own writes): already woken
        (1, 1, 1, False),  # the look recorded it: at rest
        (2, 1, 1, True),  # a spec change
        (2, 1, 2, False),  # the events after it, until a look records generation 2
        (3, 1, 2, True),  # another change before a look recorded the last: once more
        (2, 2, None, False),  # listed at start, in step: the start's own look is enough
        (3, 2, None, True),  # listed at start, changed while the operator was down
        (None, None, None, False),  # no generation: nothing to compare
    ],
)
def test_a_new_generation_wakes_one_look(
    generation: object, observed: object, woken: object, looks: bool
) -> None:
    from kappa.controllers.watches import new_generation

    assert new_generation(generation, observed, woken) is looks
