"""Nothing piles up: savepoints beyond the history's bound are disposed of through the runtime before they
are forgotten, and the outputs of retired versions beyond a view's retainVersions are removed after the
rollback window under deletionPolicy Delete only. Never what a rollback, a running version or a reader needs.

The session operator keeps a savepoint history of 3 (conftest.py). FKO's FlinkStateSnapshot controller is
played by tests/doubles/snapshots.py, next to the FKO double.

Runtime: the savepoint story 90-110 s (a first deploy and four upgrades through the FKO double, on a loaded
2-core machine), the outputs story 55-70 s (two replays in the shop), plus their fixtures' set-up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.snapshots import FakeSnapshotOperator
from tests.doubles.strimzi import FakeTopicOperator
from tests.integration.shop import Shop, replayrun, wait_run
from tests.integration.testbed import Kubectl, OperatorProcess, conditions

WINDOW = 4  # seconds: spec.upgrade.rollbackWindow (a version's deployment, and so its protection, goes after)
HISTORY = 3  # KAPPA_SAVEPOINT_HISTORY of the session operator (conftest.py)


@pytest.fixture(scope="module")
def fake_snapshots(control_plane: Path, fake_fko: FakeFlinkOperator) -> Iterator[FakeSnapshotOperator]:
    with FakeSnapshotOperator(control_plane, fake_fko, namespaces=()) as double:
        yield double
    assert not double.errors, double.errors


@pytest.fixture
def snapshots(fake_snapshots: FakeSnapshotOperator, namespace: str) -> Iterator[FakeSnapshotOperator]:
    fake_snapshots.add_namespace(namespace)
    yield fake_snapshots
    fake_snapshots.release(namespace)


def streamjob(version: str) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": "sessionizer"},
        "spec": {
            "version": version,
            "source": {"kafka": {"clusterRef": "events"}, "topics": ["clicks"]},
            "output": {"topic": {"base": "sessions", "partitions": 1}},
            "flink": {
                "image": "kappa-dev/flink-sql-runner:1.20",
                "flinkVersion": "v1_20",
                "sql": ["INSERT INTO `${KAPPA_OUTPUT_TOPIC}` SELECT * FROM clicks"],
            },
            "upgrade": {"readinessTimeout": "30s", "stableFor": "1s", "rollbackWindow": f"{WINDOW}s"},
        },
    }


def live(kubectl: Kubectl, version: str) -> dict[str, Any]:
    def ok(o: dict[str, Any]) -> bool:
        ready = conditions(o).get("Ready", {})
        return (
            (o.get("status") or {}).get("activeVersion") == version
            and ready.get("status") == "True"
            and ready.get("observedGeneration") == o["metadata"]["generation"]
        )

    return kubectl.wait_for("sj", "sessionizer", ok, timeout=60, what=f"{version} live")


def test_upgrades_beyond_the_savepoint_history_dispose_of_the_oldest_and_keep_the_rollback_savepoint(
    kappa_operator: OperatorProcess,
    kubectl: Kubectl,
    fko: FakeFlinkOperator,
    strimzi: FakeTopicOperator,
    snapshots: FakeSnapshotOperator,
) -> None:
    ns = str(kubectl.namespace)
    kubectl.apply(streamjob("v1"))
    live(kubectl, "v1")
    taken: list[str] = []
    for n in range(2, HISTORY + 3):  # v1 → v2 → … → v5: four savepoints, one beyond the history
        kubectl.apply(streamjob(f"v{n}"))
        live(kubectl, f"v{n}")
        taken.append(fko.savepoints(ns, f"sessionizer-v{n - 1}")[-1])
    done = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: [s["path"] for s in o["status"]["savepoints"]] == taken[1:],
        timeout=WINDOW + 30,
        what=f"the history down to its newest {HISTORY}",
    )
    # Disposed of through the runtime (FKO: a FlinkStateSnapshot with disposeOnDelete, deleted once COMPLETED,
    # then disposed of by FKO through the active version's running job) before it was forgotten.
    assert snapshots.disposed(ns) == taken[:1]
    messages = [m for r, m in events(kubectl) if r == "SavepointsDisposed"]
    assert len(messages) == 1 and taken[0] in messages[0]
    # The savepoint that v4, the previous version, would be rolled back to stays; the upgrade points at it.
    assert done["status"]["upgrade"]["savepoint"] == taken[-1]
    assert done["status"]["upgrade"]["previousVersion"] == "v4"
    assert [s["reason"] for s in done["status"]["savepoints"]] == ["Upgrade"] * HISTORY


def events(kubectl: Kubectl) -> list[tuple[str, str]]:
    return events_of(kubectl, "sessionizer")


def events_of(kubectl: Kubectl, name: str) -> list[tuple[str, str]]:
    out = json.loads(
        kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
    )
    return [(e["reason"], e["message"]) for e in out["items"]]


def test_retired_outputs_beyond_retain_versions_go_after_the_window_under_delete_only(
    shop: Shop, kubectl: Kubectl
) -> None:
    """Two replays make v1 retired beyond retainVersions 1; its table stays under Retain, and goes once the
    policy is Delete, while v2 (previous) and v3 (active, read by the view) stay."""
    window = 4  # seconds: the job's and the runs' rollback windows
    kubectl("patch", "mv", "sessions", "--type=merge", "-p", '{"spec":{"retainVersions":1}}')
    kubectl(
        "patch",
        "sj",
        "sessionizer",
        "--type=merge",
        "-p",
        f'{{"spec":{{"upgrade":{{"rollbackWindow":"{window}s"}}}}}}',
    )
    for name, version in (("fix-1", "v2"), ("fix-2", "v3")):
        kubectl.apply(replayrun(name, version=version, rollbackWindow=f"{window}s"))
        wait_run(kubectl, name, "Succeeded", timeout=180)
        kubectl.wait_for(
            "sj",
            "sessionizer",
            lambda o, version=version: o["status"].get("activeVersion") == version,
            timeout=30,
            what=f"{version} live",
        )
        # As GitOps would: spec.version follows the promoted version (a run promotes from spec's version).
        kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", f'{{"spec":{{"version":"{version}"}}}}')
    mv = kubectl.wait_for(
        "mv",
        "sessions",
        lambda o: (o["status"].get("activeVersion"), o["status"].get("previousVersion")) == ("v3", "v2"),
        timeout=30,
        what="the view on v3, v2 previous",
    )
    assert {v["name"]: v["state"] for v in mv["status"]["versions"]} == {"v3": "Active", "v2": "Previous"}
    # deletionPolicy Retain (the default): well past the window, every table is still there.
    time.sleep(window + 3)
    assert all(shop.table_exists(f"sessions_v{n}") for n in (1, 2, 3))
    assert "RetiredOutputsRemoved" not in [r for r, _ in events_of(kubectl, "sessions")]

    kubectl(
        "patch", "sj", "sessionizer", "--type=merge", "-p", '{"spec":{"output":{"deletionPolicy":"Delete"}}}'
    )
    deadline = time.monotonic() + 30
    while shop.table_exists("sessions_v1"):
        assert time.monotonic() < deadline, "v1's table outlived deletionPolicy Delete"
        time.sleep(0.5)
    assert shop.table_exists("sessions_v2") and shop.table_exists("sessions_v3")
    assert shop.view_table() == "sessions_v3"
    said = [m for r, m in events_of(kubectl, "sessions") if r == "RetiredOutputsRemoved"]
    assert len(said) == 1 and "sessions_v1 (v1)" in said[0]
