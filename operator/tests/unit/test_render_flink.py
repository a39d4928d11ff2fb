"""Renderers: each version's FlinkDeployment and KafkaTopic carry the injected names."""

from __future__ import annotations

from typing import Any

import pytest

from kappa.api.streamjob import StreamJobSpec
from kappa.render.flink import (
    SQL_RUNNER_JAR,
    UnknownVariable,
    flink_deployment,
    injection_for,
    kafka_topic,
    redeploy_nonce,
    substitute,
    with_state,
)

SQL_JOB = StreamJobSpec.model_validate(
    {
        "version": "v2",
        "source": {"kafka": {"bootstrapServers": "k:9092"}, "topics": ["clicks"]},
        "output": {"topic": {"base": "sessions"}, "table": {"base": "sessions"}},
        "flink": {
            "image": "img:1",
            "sql": [
                "CREATE TABLE t WITH ('properties.group.id' = '${KAPPA_GROUP_ID}', "
                "'scan.startup.mode' = '${KAPPA_STARTUP_MODE}')",
                "INSERT INTO ${KAPPA_OUTPUT_TABLE} SELECT 1",
            ],
            "parallelism": 3,
            "flinkConfiguration": {"execution.checkpointing.interval": "2s"},
        },
    }
)
JAR_JOB = StreamJobSpec.model_validate(
    {
        **SQL_JOB.wire(),
        "flink": {"image": "img:1", "jarURI": "local:///job.jar", "entryClass": "a.B", "args": ["--x", "1"]},
    }
)


def inject(spec: StreamJobSpec, version: str = "v2"):  # type: ignore[no-untyped-def]
    return injection_for(
        "shop", "sessionizer", spec, version, bootstrap_servers="k:9092", startup_mode="earliest-offset"
    )


def test_a_sql_version_gets_its_own_group_output_and_prefix() -> None:
    fd = flink_deployment(
        namespace="shop", job="sessionizer", owner_uid="u1", spec=SQL_JOB, injection=inject(SQL_JOB)
    )
    assert fd["metadata"]["name"] == "sessionizer-v2"
    assert fd["metadata"]["labels"]["kappa.dev/version"] == "v2"
    assert fd["metadata"]["ownerReferences"][0]["uid"] == "u1"
    job = fd["spec"]["job"]
    assert job["jarURI"] == SQL_RUNNER_JAR
    assert job["upgradeMode"] == "savepoint"
    assert job["state"] == "running"
    assert "'properties.group.id' = 'shop.sessionizer.v2'" in job["args"][0]
    assert "'scan.startup.mode' = 'earliest-offset'" in job["args"][0]
    assert job["args"][1] == "INSERT INTO sessions_v2 SELECT 1"
    conf = fd["spec"]["flinkConfiguration"]
    assert conf["kappa.transactional-id-prefix"] == "shop.sessionizer.v2"
    assert conf["kappa.output-topic"] == "sessions.v2"
    assert conf["execution.checkpointing.interval"] == "2s"


def test_a_jar_version_gets_the_injection_as_args_and_config() -> None:
    fd = flink_deployment(
        namespace="shop",
        job="sessionizer",
        owner_uid="u1",
        spec=JAR_JOB,
        injection=inject(JAR_JOB, "v3"),
        state="suspended",
        initial_savepoint_path="file:///sp/1",
        savepoint_redeploy_nonce=2,
    )
    job = fd["spec"]["job"]
    assert job["args"][:2] == ["--x", "1"]
    assert "--kappa.group-id=shop.sessionizer.v3" in job["args"]
    assert (job["entryClass"], job["state"]) == ("a.B", "suspended")
    assert (job["initialSavepointPath"], job["savepointRedeployNonce"]) == ("file:///sp/1", 2)


def test_versions_never_share_names() -> None:
    a, b = inject(SQL_JOB, "v1"), inject(SQL_JOB, "v2")
    assert a.group_id != b.group_id
    assert a.transactional_id_prefix != b.transactional_id_prefix
    assert a.output_topic != b.output_topic and a.output_table != b.output_table


def test_an_unknown_variable_is_an_error() -> None:
    with pytest.raises(UnknownVariable, match=r"\$\{KAPPA_GROUP\} is not a variable"):
        substitute("SELECT '${KAPPA_GROUP}'", inject(SQL_JOB).variables())
    assert substitute("SELECT '${OTHER}'", {}) == "SELECT '${OTHER}'"  # not ours: left alone


def test_kafka_topic_per_version() -> None:
    topic = kafka_topic(
        namespace="shop",
        job="sessionizer",
        owner_uid="u1",
        topic="sessions.v2",
        version="v2",
        partitions=6,
        replicas=3,
        config={"retention.ms": "-1"},
        cluster="events",
    )
    assert topic["apiVersion"] == "kafka.strimzi.io/v1"
    assert topic["metadata"]["name"] == "sessions-v2"
    assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "events"
    assert "ownerReferences" not in topic["metadata"]  # outputs outlive the job unless deletionPolicy: Delete
    assert topic["spec"] == {
        "topicName": "sessions.v2",
        "partitions": 6,
        "replicas": 3,
        "config": {"retention.ms": "-1"},
    }


def _deployed() -> dict[str, Any]:
    injection = injection_for(
        "ns", "job", SQL_JOB, "v2", bootstrap_servers="k:9092", startup_mode="latest-offset"
    )
    fd = flink_deployment(namespace="ns", job="job", owner_uid="u", spec=SQL_JOB, injection=injection)
    fd["status"] = {"jobStatus": {"state": "RUNNING"}}
    fd["metadata"]["resourceVersion"] = "42"
    return fd


@pytest.mark.parametrize(
    ("state", "savepoint", "expected_job"),
    [
        ("suspended", None, {"state": "suspended"}),
        ("running", None, {"state": "running"}),
        (
            "running",
            "file:/sp/1",
            {
                "state": "running",
                "initialSavepointPath": "file:/sp/1",
                "savepointRedeployNonce": redeploy_nonce("file:/sp/1"),
            },
        ),
    ],
)
def test_another_version_keeps_the_job_it_was_deployed_with(
    state: str, savepoint: str | None, expected_job: dict[str, object]
) -> None:
    deployed = _deployed()
    changed = with_state(deployed, state=state, initial_savepoint_path=savepoint)  # type: ignore[arg-type]
    assert changed["spec"]["job"]["args"] == deployed["spec"]["job"]["args"]
    for key, value in expected_job.items():
        assert changed["spec"]["job"][key] == value
    assert "status" not in changed and "resourceVersion" not in changed["metadata"]
    assert deployed["spec"]["job"]["state"] == "running"  # the input is not changed


def test_a_restore_carries_a_nonce_from_its_path_on_the_first_apply_too() -> None:
    injection = injection_for(
        "ns", "job", SQL_JOB, "v3", bootstrap_servers="k:9092", startup_mode="latest-offset"
    )
    fd = flink_deployment(
        namespace="ns",
        job="job",
        owner_uid="u",
        spec=SQL_JOB,
        injection=injection,
        initial_savepoint_path="file:/a",
    )
    assert fd["spec"]["job"]["savepointRedeployNonce"] == redeploy_nonce("file:/a")
    assert redeploy_nonce("file:/a") != redeploy_nonce("file:/b")
