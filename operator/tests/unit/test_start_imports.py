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

# What cli/run.py imports before Kopf starts: Kopf and the controllers (they register the handlers), metrics,
# the leader election.
START = (
    "from kappa.cli.run import load_operator; load_operator(); "
    "import kappa.adapters.metrics, kappa.adapters.leader"
)

NOT_AT_START = [
    # (module, why it is left out, MiB of RSS it costs at import on this machine)
    ("kubernetes.client.api.core_v1_api", "events and ConfigMaps go through kube.request_json", 20),
    ("psycopg", "only a MaterializedView with a PostgreSQL backend needs it", 9),
    ("httpx", "only a session runtime (Flink REST) needs it", 6),
    ("rich", "the terminal UI of `kubectl kappa`, not the operator's", 0),
    # kubernetes imports these for an OIDC user's token refresh and a websocket's proxy only
    # (adapters/lazy.py import_kubernetes).
    ("requests", "only an OIDC token refresh, or a websocket through a proxy, needs it", 5),
    ("requests_oauthlib", "only an OIDC token refresh needs it", 1),
    ("oauthlib.oauth2", "only an OIDC token refresh needs it", 2),
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


def test_what_kubernetes_imports_for_rare_uses_is_the_real_thing_on_first_use() -> None:
    # What KubeConfigLoader._refresh_oidc uses (OAuth2Session, and the error class of its except clause) and
    # what the websocket client asks before it connects through a proxy. After the start, which loaded none
    # of their modules, each is the real one on first use; and whatever imports requests later (google-auth
    # imports its submodules) gets the real package.
    code = f"""{START}
import sys
before = "requests" in sys.modules
from kubernetes.config import kube_config
from kubernetes.stream import ws_client
session = kube_config.OAuth2Session(client_id="kappa", auto_refresh_url="https://idp.example/token")
error = kube_config.oauthlib.oauth2.rfc6749.errors.InvalidClientIdError
bypass = ws_client.should_bypass_proxies("https://10.0.0.1:6443", no_proxy="10.0.0.1")
import requests.adapters, requests_oauthlib
from oauthlib.oauth2.rfc6749.errors import InvalidClientIdError
print(before, isinstance(session, requests_oauthlib.OAuth2Session), session.client_id,
      error is InvalidClientIdError, bypass, isinstance(session, requests.Session),
      requests.adapters.HTTPAdapter.__module__)
"""
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "kappa", "True", "True", "True", "requests.adapters"]


def test_a_library_that_imports_requests_after_the_start_gets_the_real_package() -> None:
    # The stand-ins are in sys.modules only while kubernetes is imported: a submodule import, which a
    # stand-in could not serve, works after the start without any use of kubernetes first.
    code = f"""{START}
import requests.adapters, requests.exceptions, oauthlib.oauth2, sys
print(type(sys.modules["requests"]).__name__, requests.adapters.HTTPAdapter.__name__,
      type(sys.modules["oauthlib"].oauth2).__name__, oauthlib.oauth2.WebApplicationClient.__name__)
"""
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["module", "HTTPAdapter", "module", "WebApplicationClient"]
