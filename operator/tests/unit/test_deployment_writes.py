"""What the operator writes to a version's FlinkDeployment, table-driven: at rest it stops asking FKO for
the periodic checkpoints only its Checkpointed gate needed, and asks again whenever it is applied running; an
apply that would change nothing the watch shows is not sent. Over the machine's decision, the spec it decides
with, the status it reads and the FlinkDeployments it renders."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kappa.api.streamjob import StreamJobSpec
from kappa.machines import streamjob as machine
from kappa.machines.fko import PERIODIC_CHECKPOINT_INTERVAL, deployment_view
from kappa.machines.promotion import Live
from kappa.machines.runtime_facts import Deployment
from kappa.machines.savepoint_upgrade import decide
from kappa.machines.upgrade import Apply, Observed, Quiet, UpgradeSpec, UpgradeState
from kappa.render.flink import already_applied, quieted, with_state
from tests.unit.test_render_flink import JAR_JOB

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
QUIET = UpgradeSpec("v1", timedelta(minutes=5), timedelta(minutes=2), max_restarts=3, quiet_at_rest=True)
ASKING = Deployment(
    job_state="RUNNING",
    started_at=T0,
    last_checkpoint_at=T0 + timedelta(seconds=5),
    periodic_checkpoints=True,
)
QUIETED = dataclasses.replace(ASKING, periodic_checkpoints=False)
AT_REST = UpgradeState("Idle", active="v1")


@pytest.mark.parametrize(
    ("name", "state", "deployments", "spec", "actions"),
    [
        ("at rest, still asking", AT_REST, {"v1": ASKING}, QUIET, [Quiet("v1")]),
        ("at rest, asked no more", AT_REST, {"v1": QUIETED}, QUIET, []),
        (
            "the user's own interval (or a runtime that reports Flink's own checkpoints)",
            AT_REST,
            {"v1": ASKING},
            dataclasses.replace(QUIET, quiet_at_rest=False),
            [],
        ),
        (
            "restarting at rest: it is asked to run, not quieted",
            AT_REST,
            {"v1": dataclasses.replace(ASKING, job_state="RESTARTING")},
            QUIET,
            [Apply("v1", "running")],
        ),
        (
            "a new version starting keeps asking: its gate needs a checkpoint",
            UpgradeState(
                "Starting", active=None, target="v1", entered_at=T0, deadline=T0 + timedelta(minutes=5)
            ),
            {"v1": dataclasses.replace(ASKING, last_checkpoint_at=None)},
            QUIET,
            [Apply("v1", "running")],
        ),
        (
            "a new version passes its gates: at rest from that look",
            UpgradeState(
                "Starting", active=None, target="v1", entered_at=T0, deadline=T0 + timedelta(minutes=5)
            ),
            {"v1": ASKING},
            QUIET,
            [Quiet("v1")],
        ),
        (
            "rolled back: the version that stays runs again",
            UpgradeState(
                "RollingBack",
                active="v1",
                entered_at=T0,
                deadline=T0 + timedelta(minutes=5),
                savepoint="file:///sp",
                failed_version="v2",
            ),
            {"v1": ASKING},
            dataclasses.replace(QUIET, version="v2"),
            [Quiet("v1")],
        ),
        (
            "rolled back and at rest: the version that stays",
            UpgradeState(
                "RolledBack", active="v1", entered_at=T0, savepoint="file:///sp", failed_version="v2"
            ),
            {"v1": ASKING},
            dataclasses.replace(QUIET, version="v2"),
            [Quiet("v1")],
        ),
        (
            "a failed first deploy left running for inspection keeps asking: it may still recover",
            UpgradeState("Idle", failed_version="v1"),
            {"v1": dataclasses.replace(ASKING, last_checkpoint_at=None)},
            QUIET,
            [],
        ),
        (
            "suspended at rest: nothing runs to ask for",
            UpgradeState("Idle", active="v1", savepoint="file:///sp"),
            {
                "v1": dataclasses.replace(
                    ASKING,
                    desired_state="suspended",
                    job_state="FINISHED",
                    upgrade_savepoint_path="file:///sp",
                )
            },
            dataclasses.replace(QUIET, suspend=True),
            [],
        ),
    ],
)
def test_the_machine_quiets_only_a_version_at_rest(
    name: str, state: UpgradeState, deployments: dict[str, Deployment], spec: UpgradeSpec, actions: list[Any]
) -> None:
    decision = decide(state, Observed(deployments), spec, T0 + timedelta(minutes=1))
    assert decision.actions == actions, name


def _job(configuration: dict[str, str]) -> StreamJobSpec:
    flink = {"image": "img:1", "jarURI": "local:///job.jar", "flinkConfiguration": configuration}
    return StreamJobSpec.model_validate({**JAR_JOB.wire(), "flink": flink})


@pytest.mark.parametrize(
    ("configuration", "asks_for_checkpoints", "quiet"),
    [
        ({}, True, True),
        ({PERIODIC_CHECKPOINT_INTERVAL: "10 min"}, True, False),  # the user's own: kept at rest too
        ({PERIODIC_CHECKPOINT_INTERVAL: "0 0 * * * ?"}, True, False),  # a cron expression of their own
        ({PERIODIC_CHECKPOINT_INTERVAL: "0"}, True, True),  # "never" is no interval: the default applies
        ({}, False, False),  # the session runtime reports Flink's own checkpoints
    ],
)
def test_the_spec_says_whether_versions_are_quieted(
    configuration: dict[str, str], asks_for_checkpoints: bool, quiet: bool
) -> None:
    live = Live(version="v1", adopt=False, record=None)
    spec = machine.upgrade_spec(
        _job(configuration), live, None, False, asks_for_checkpoints=asks_for_checkpoints
    )
    assert spec.quiet_at_rest is quiet


@pytest.mark.parametrize(
    ("configuration", "asking"),
    [
        ({PERIODIC_CHECKPOINT_INTERVAL: "60 s"}, True),
        ({PERIODIC_CHECKPOINT_INTERVAL: ""}, False),
        ({PERIODIC_CHECKPOINT_INTERVAL: "  "}, False),
        ({}, False),
    ],
)
def test_the_view_reads_whether_a_deployment_asks(configuration: dict[str, str], asking: bool) -> None:
    fd = {"spec": {"flinkConfiguration": configuration, "job": {"state": "running"}}, "status": {}}
    assert deployment_view(fd).periodic_checkpoints is asking


DEPLOYED = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkDeployment",
    "metadata": {
        "name": "orders-v1",
        "namespace": "shop",
        "labels": {"kappa.dev/job": "orders"},
        "ownerReferences": [{"kind": "StreamJob", "name": "orders", "uid": "u1"}],
        "resourceVersion": "7",
    },
    "spec": {
        "flinkConfiguration": {"state.savepoints.dir": "s3://sp", PERIODIC_CHECKPOINT_INTERVAL: "60 s"},
        "job": {"jarURI": "local:///job.jar", "state": "running", "upgradeMode": "savepoint"},
    },
}


def test_quieted_blanks_the_interval_and_changes_nothing_else() -> None:
    fd = quieted(DEPLOYED)
    configuration = fd["spec"]["flinkConfiguration"]
    # Blank, not removed: FKO's observe config keeps a key of the deployed spec that the current spec lacks.
    assert configuration == {"state.savepoints.dir": "s3://sp", PERIODIC_CHECKPOINT_INTERVAL: ""}
    assert fd["spec"]["job"] == DEPLOYED["spec"]["job"]
    assert fd["metadata"] == {
        "name": "orders-v1",
        "namespace": "shop",
        "labels": {"kappa.dev/job": "orders"},
        "ownerReferences": [{"kind": "StreamJob", "name": "orders", "uid": "u1"}],
    }
    assert DEPLOYED["spec"]["flinkConfiguration"][PERIODIC_CHECKPOINT_INTERVAL] == "60 s"  # not mutated


@pytest.mark.parametrize(
    ("deployed_interval", "state", "expected"),
    [
        ("", "running", "60 s"),  # quieted, resumed or rolled back to: its gates need checkpoints again
        (None, "running", "60 s"),
        ("10 min", "running", "10 min"),  # the interval it was deployed with stays
        ("", "suspended", ""),  # a suspended version asks for nothing
        (None, "suspended", None),
    ],
)
def test_a_version_applied_running_asks_again(
    deployed_interval: str | None, state: Any, expected: str | None
) -> None:
    configuration = {"state.savepoints.dir": "s3://sp"}
    if deployed_interval is not None:
        configuration[PERIODIC_CHECKPOINT_INTERVAL] = deployed_interval
    deployed = {**DEPLOYED, "spec": {**DEPLOYED["spec"], "flinkConfiguration": configuration}}
    fd = with_state(deployed, state=state, checkpoint_interval="60 s")
    assert fd["spec"]["flinkConfiguration"].get(PERIODIC_CHECKPOINT_INTERVAL) == expected


def _changed(**changes: Any) -> dict[str, Any]:
    fd = with_state(DEPLOYED, state="running")
    for path, value in changes.items():
        part, key = path.split("__")
        (fd["metadata"] if part == "meta" else fd["spec"])[key] = value
    return fd


@pytest.mark.parametrize(
    ("name", "deployed", "desired", "skipped"),
    [
        ("the same", DEPLOYED, with_state(DEPLOYED, state="running"), True),
        ("never deployed", None, with_state(DEPLOYED, state="running"), False),
        ("another state", DEPLOYED, with_state(DEPLOYED, state="suspended"), False),
        ("quieted", DEPLOYED, quieted(DEPLOYED), False),
        ("a label of ours missing", DEPLOYED, _changed(meta__labels={"kappa.dev/role": "canary"}), False),
        (
            "a label of someone else's beside ours",
            {
                **DEPLOYED,
                "metadata": {**DEPLOYED["metadata"], "labels": {"kappa.dev/job": "orders", "team": "a"}},
            },
            with_state(DEPLOYED, state="running"),
            True,
        ),
        ("another owner", DEPLOYED, _changed(meta__ownerReferences=[]), False),
        ("a field less in spec", DEPLOYED, _changed(spec__flinkConfiguration={}), False),
    ],
)
def test_an_apply_that_would_change_nothing_is_not_sent(
    name: str, deployed: dict[str, Any] | None, desired: dict[str, Any], skipped: bool
) -> None:
    assert already_applied(deployed, desired) is skipped, name
