"""Which runtime a StreamJob's versions run on: `spec.runtime`, else the operator's default (`kappa run
--runtime`, `--flink-rest-url`, `--sql-runner-jar`). The first deploy records it in `status.runtime`, and a
job stays there: changing the operator's default never moves a running job away from its savepoints."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kappa.adapters.flink_rest import Auth, FlinkRest
from kappa.adapters.job_runtime.flink_deployment import FlinkDeploymentRuntime
from kappa.adapters.job_runtime.seam import JobRuntime
from kappa.adapters.job_runtime.session import SessionRuntime
from kappa.adapters.kube import Kube
from kappa.adapters.lazy import preload
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus

RUNTIMES = ("FlinkDeployment", "Session")


class RuntimeUnconfigured(Exception):
    """The job's runtime cannot be used as specified; the message names the field or flag to set."""


def default_runtime() -> str:
    value = os.environ.get("KAPPA_RUNTIME", "FlinkDeployment")
    return value if value in RUNTIMES else "FlinkDeployment"


def runtime_name(job: StreamJobSpec, status: StreamJobStatus) -> str:
    """The runtime recorded in the job's status, else spec.runtime, else the operator's default."""
    recorded = status.runtime
    if recorded in RUNTIMES:
        return str(recorded)
    return job.runtime.type if job.runtime else default_runtime()


class Runtimes:
    """One FlinkDeployment runtime, and one session runtime per (REST URL, credentials), shared by the
    controllers of a process (the session runtime keeps the uploaded jar's id)."""

    _sessions: dict[tuple[str, str], SessionRuntime] = {}

    def __init__(
        self, kube: Kube, deployments: Callable[[str, str], list[dict[str, Any]]] | None = None
    ) -> None:
        self.kube = kube
        self.fko = FlinkDeploymentRuntime(kube, deployments)

    async def for_job(self, job: StreamJobSpec, namespace: str, status: StreamJobStatus) -> JobRuntime:
        if runtime_name(job, status) == "FlinkDeployment":
            return self.fko
        session = job.runtime.session if job.runtime and job.runtime.session else None
        url = (session.rest_url if session else None) or os.environ.get("KAPPA_FLINK_REST_URL")
        if not url:
            raise RuntimeUnconfigured(
                "spec.runtime.session.restURL is not set and the operator has no --flink-rest-url"
            )
        header = ""
        if session and session.credentials_ref:
            ref = session.credentials_ref
            value = await self.kube.secret_value(namespace, ref.name, ref.key)
            if not value:
                raise RuntimeUnconfigured(
                    f"spec.runtime.session.credentialsRef: Secret {ref.name} has no key {ref.key}"
                )
            header = value
        key = (url, header)
        if key not in Runtimes._sessions:
            await preload("httpx")
            jar = os.environ.get("KAPPA_SQL_RUNNER_JAR")
            Runtimes._sessions[key] = SessionRuntime(
                self.kube,
                FlinkRest(url, auth=Auth(header) if header else None),
                runner_jar=Path(jar) if jar else None,
                savepoint_dir=os.environ.get("KAPPA_SAVEPOINT_DIR") or None,
            )
        return Runtimes._sessions[key]
