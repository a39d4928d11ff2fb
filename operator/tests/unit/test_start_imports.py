"""What the operator imports at start is what its memory at rest starts from (benchmarks/README.md, "RSS").
Libraries that only some features need stay out until a resource needs them (adapters/lazy.py), and the
core/v1 calls go through `request_json` rather than CoreV1Api. Each row is a module the operator's start must
not load, with the megabytes it would cost; the test imports what `kappa run` imports, in a fresh
interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

OPERATOR = Path(__file__).resolve().parents[2]

# What cli/run.py imports before Kopf starts: the controllers (they register the handlers), metrics, the
# leader election.
START = "import kappa.controllers, kappa.adapters.metrics, kappa.adapters.leader"

NOT_AT_START = [
    # (module, why it is left out, MiB of RSS it costs at import on this machine)
    ("kubernetes.client.api.core_v1_api", "events and ConfigMaps go through kube.request_json", 20),
    ("psycopg", "only a MaterializedView with a PostgreSQL backend needs it", 9),
    ("httpx", "only a session runtime (Flink REST) needs it", 6),
    ("rich", "the terminal UI of `kubectl kappa`, not the operator's", 0),
]


@pytest.fixture(scope="module")
def loaded() -> set[str]:
    code = f"import json, sys; {START}; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(("module", "why", "mib"), NOT_AT_START, ids=[row[0] for row in NOT_AT_START])
def test_the_start_does_not_import(loaded: set[str], module: str, why: str, mib: int) -> None:
    assert module not in loaded, f"the operator's start imports {module} ({mib} MiB): {why}"


def test_the_start_imports_what_it_runs(loaded: set[str]) -> None:
    # The check above means something only if the start is the real one: Kopf, the Kubernetes client,
    # confluent-kafka and the operator's StreamJob controller are in.
    for module in ("kopf", "kubernetes.dynamic", "confluent_kafka", "kappa.controllers.streamjob"):
        assert module in loaded, module
