"""e2e on kind: real Strimzi, FKO and this operator's image. Needs a Docker engine and network access."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def docker_engine_reason() -> str | None:
    if not shutil.which("docker"):
        return "no docker client on this machine"
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return "no Docker engine reachable (docker info failed); kind needs one"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = docker_engine_reason()
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=f"e2e skipped: {reason}"))
