"""The Kafka adapter's client lifecycle, each scenario in a process of its own (kafka_lifecycle.py, with
faulthandler on), so that a native crash fails the test with its signal instead of killing the test run.

The operator died in librdkafka on fresh stacks: the AdminClient's ListConsumerGroupOffsets, answered
NOT_COORDINATOR by a coordinator still loading, made librdkafka dereference the AdminClient's NULL consumer
group (SIGSEGV in the thread rdk:main, no Python stack). Group requests now go through kafka-python.

Runtime: about 35 s (a throwaway broker starts and stops in ~15 s, read for 5 s; 3 s shared; ~12 s churn).
`KAPPA_STRESS_PYTHONPATH=DIR` runs the workers on another copy of the package (a DIR holding `kappa/`, e.g. an
old commit's), to see these tests fail on it.
"""

from __future__ import annotations

import os

from tests.integration.kafka_lifecycle import Run, cold_run, run_worker

OLD = os.environ.get("KAPPA_STRESS_PYTHONPATH")


def _explain(run: Run) -> str:
    return f"{run.line()}\n{run.stderr}"


def test_a_fresh_kafka_does_not_crash_the_reads_of_group_offsets() -> None:
    # The window: __consumer_offsets is created by the first group request and its 50 shards load one by one.
    run = cold_run(seconds=5, settle=0, pythonpath=OLD)
    assert not run.crashed, _explain(run)
    assert run.returncode == 0 and run.result is not None, _explain(run)
    counts = run.result["counts"]
    # The reads ran all along (each either answered or, while the coordinator was loading, failed retriably).
    assert sum(n for k, n in counts.items() if k.startswith("committed_many")) >= 8, _explain(run)
    # And what was seeded on the cold cluster reads back.
    assert sorted(run.result["seeded"].values()) == [0, 0, 0], _explain(run)


def test_one_adapter_used_from_several_threads_at_once(kafka_bootstrap: str) -> None:
    run = run_worker("shared", kafka_bootstrap, 3, pythonpath=OLD)
    assert run.returncode == 0 and run.result is not None, _explain(run)
    counts = run.result["counts"]
    assert not [k for k in counts if "failed" in k], _explain(run)
    assert counts["committed_many ok"] >= 5 and counts["count_records ok"] >= 5, _explain(run)


def test_adapters_closed_or_dropped_with_requests_in_flight(kafka_bootstrap: str) -> None:
    run = run_worker("churn", kafka_bootstrap, 3, pythonpath=OLD)
    assert run.returncode == 0 and run.result is not None, _explain(run)  # a worker that hung is killed
    counts = run.result["counts"]
    # Every request ends: answered, or failed with an error; none waits forever, none blocks the event loop.
    assert not [k for k in counts if "hung" in k], _explain(run)
    # No client thread outlives its adapter, nor a quota call against a cluster that does not answer.
    assert counts["kafka-python IO threads left"] == 0, _explain(run)
    assert counts["quota threads left after an outage"] == 0, _explain(run)
