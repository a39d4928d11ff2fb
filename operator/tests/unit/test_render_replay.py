"""The replay job: the StreamJob's job at the run's version, with overrides, a seeded group, its own output
and, for a backfill, its bounded end."""

from __future__ import annotations

from typing import Any

from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.render.replay import replay_deployment

JOB = StreamJobSpec.model_validate(
    {
        "version": "v1",
        "source": {"kafka": {"bootstrapServers": "k:9092"}, "topics": ["clicks"]},
        "output": {"table": {"base": "sessions"}, "topic": {"base": "sessions"}, "view": "sessions"},
        "flink": {
            "image": "img:1",
            "jarURI": "local:///job.jar",
            "parallelism": 2,
            "flinkConfiguration": {"a": "1"},
        },
    }
)


def render(**spec: Any) -> dict[str, Any]:
    run = ReplayRunSpec.model_validate(
        {"jobRef": {"name": "sessionizer"}, "version": "v2", "from": {"earliest": True}, **spec}
    )
    return replay_deployment(
        namespace="shop",
        job_name="sessionizer",
        job_uid="uid-1",
        job=JOB,
        run_name="fix",
        run=run,
        bootstrap_servers="k:9092",
    )


def test_the_replay_is_the_job_at_the_new_version_reading_its_seeded_group() -> None:
    fd = render()
    config = fd["spec"]["flinkConfiguration"]
    assert fd["metadata"]["name"] == "sessionizer-v2"
    assert fd["metadata"]["labels"]["kappa.dev/role"] == "replay"
    assert fd["metadata"]["labels"]["kappa.dev/replayrun"] == "fix"
    # Owned by the StreamJob: after the cutover it is the live version, whatever happens to the run.
    assert fd["metadata"]["ownerReferences"][0]["kind"] == "StreamJob"
    assert config["kappa.group-id"] == "shop.sessionizer.v2"
    assert config["kappa.client-id"] == "shop.sessionizer.v2"
    assert config["kappa.startup-mode"] == "group-offsets"
    assert config["kappa.output-table"] == "sessions_v2"
    assert config["kappa.output-topic"] == "sessions.v2"
    assert config["kappa.bounded-mode"] == "unbounded"
    assert config["a"] == "1"


def test_overrides_apply_to_the_replay_only() -> None:
    fd = render(
        overrides={"image": "img:2", "parallelism": 8, "flinkConfiguration": {"b": "2"}},
        output={"table": "sessions_fixed"},
        throttle={"recordsPerSecond": 500},
    )
    assert fd["spec"]["image"] == "img:2"
    assert fd["spec"]["job"]["parallelism"] == 8
    config = fd["spec"]["flinkConfiguration"]
    assert (config["a"], config["b"]) == ("1", "2")
    assert config["kappa.output-table"] == "sessions_fixed"
    assert config["kappa.max-records-per-second"] == "500"
    assert JOB.flink.image == "img:1"


def test_a_backfill_stops_at_its_bounded_end() -> None:
    fd = render(until={"offsets": [{"topic": "clicks", "partition": 0, "offset": 42}]})
    config = fd["spec"]["flinkConfiguration"]
    assert config["kappa.bounded-mode"] == "specific-offsets"
    assert config["kappa.bounded-offsets"] == "partition:0,offset:42"


def test_a_replayed_topic_keeps_its_records_unless_the_run_says_otherwise() -> None:
    from kappa.render.replay import replay_retention

    def run(**spec: Any) -> ReplayRunSpec:
        return ReplayRunSpec.model_validate(
            {"jobRef": {"name": "sessionizer"}, "version": "v2", "from": {"earliest": True}, **spec}
        )

    assert replay_retention(run()) == "-1"
    assert replay_retention(run(output={"retentionMs": 86400000})) == "86400000"
