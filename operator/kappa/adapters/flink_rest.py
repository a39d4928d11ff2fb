"""Flink's REST API (JobManager, `rest.port`), the calls a session runtime needs: upload and run a jar with a
chosen job id, read a job's state, checkpoints and exceptions, stop with a savepoint, cancel, and dispose of a
savepoint. Payloads as in Flink 2.x's REST API reference (docs/content/docs/ops/rest_api.md), checked against
Flink 2.3 in the test bed. Every call raises FlinkUnavailable when the cluster cannot be reached, and
FlinkRefused with Flink's own error text when it answers with an error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kappa.machines.session_job import JobSeen, TriggerSeen

if TYPE_CHECKING:
    import httpx


class FlinkUnavailable(Exception):
    """The REST endpoint does not answer (connection refused, timeout, 502/503/504)."""


class FlinkRefused(Exception):
    """Flink answered with an error, e.g. a program that fails at submission."""


@dataclass(frozen=True)
class Auth:
    """An Authorization header for a REST endpoint behind a proxy; Flink itself has no authentication."""

    header: str

    def __repr__(self) -> str:  # never in a log line
        return "Auth(***)"


def _errors(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:2000] or response.reason_phrase
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return str(body)[:2000]
    # Flink puts the whole server-side stack trace into errors[1]: keep the message and the innermost cause.
    text = "\n".join(str(e) for e in errors)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    first = text.splitlines()[0] if text else ""
    return (first + (f" ({causes[-1]})" if causes else ""))[:2000]


class FlinkRest:
    def __init__(self, url: str, *, auth: Auth | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": auth.header} if auth else {}
        import httpx  # only a session runtime needs it (adapters/lazy.py: Runtimes preloads it)

        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)
        self._upload_lock = asyncio.Lock()
        self._jars: dict[str, str] = {}  # local jar path → uploaded jar id

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(
        self, method: str, path: str, *, ok404: bool = False, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        import httpx  # loaded by __init__

        try:
            response = await self._client.request(
                method, path, timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT, **kwargs
            )
        except httpx.TransportError as exc:
            raise FlinkUnavailable(
                f"Flink REST API at {self.url} unreachable: {exc or type(exc).__name__}"
            ) from exc
        if response.status_code == 404 and ok404:
            return None
        if response.status_code in (502, 503, 504):
            raise FlinkUnavailable(f"Flink REST API at {self.url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise FlinkRefused(f"{method} {path}: HTTP {response.status_code}: {_errors(response)}")
        return response.json() if response.content else None

    async def overview(self) -> dict[str, Any]:
        return dict(await self._call("GET", "/overview"))

    # -- jars ------------------------------------------------------------------------------------------

    async def jar_id(self, jar: Path) -> str:
        """The id of `jar` on the cluster, uploading it once (again after a JobManager restart lost it)."""
        async with self._upload_lock:
            known = self._jars.get(str(jar))
            listed = await self._call("GET", "/jars")
            ids = {f["id"] for f in (listed or {}).get("files") or []}
            if known and known in ids:
                return known
            content = await asyncio.to_thread(jar.read_bytes)
            answer = await self._call(
                "POST",
                "/jars/upload",
                files={"jarfile": (jar.name, content, "application/x-java-archive")},
                timeout=120,
            )
            uploaded = Path(str(answer["filename"])).name
            self._jars[str(jar)] = uploaded
            return uploaded

    async def run_jar(
        self,
        jar_id: str,
        *,
        job_id: str,
        args: list[str],
        entry_class: str | None,
        parallelism: int | None,
        savepoint: str | None,
        allow_non_restored_state: bool,
        configuration: dict[str, str],
    ) -> str:
        body: dict[str, Any] = {
            "programArgsList": args,
            "jobId": job_id,
            "allowNonRestoredState": allow_non_restored_state,
            "flinkConfiguration": configuration,
        }
        if entry_class:
            body["entryClass"] = entry_class
        if parallelism:
            body["parallelism"] = parallelism
        if savepoint:
            body["savepointPath"] = savepoint
        # Running a jar plans the job on the JobManager (the SQL runner parses and optimises its statements).
        answer = await self._call("POST", f"/jars/{jar_id}/run", json=body, timeout=120)
        return str((answer or {}).get("jobid") or job_id)

    # -- jobs ------------------------------------------------------------------------------------------

    async def job(self, job_id: str) -> JobSeen | None:
        """A job's state, its start, its last transition, its last completed checkpoint and its latest
        exception (a failure it restarted from, or the root cause of a FAILED job); None when the cluster does
        not know the id."""
        detail = await self._call("GET", f"/jobs/{job_id}", ok404=True)
        if detail is None:
            return None
        state = str(detail.get("state"))
        timestamps = {k: int(v) for k, v in (detail.get("timestamps") or {}).items() if v}
        checkpoints = await self._call("GET", f"/jobs/{job_id}/checkpoints", ok404=True) or {}
        completed = ((checkpoints.get("latest") or {}).get("completed")) or {}
        failure = await self.failure(job_id)
        start = int(detail.get("start-time") or 0) or None
        return JobSeen(
            state=state,
            start_time_ms=start,
            update_time_ms=max(timestamps.values()) if timestamps else start,
            last_checkpoint_ms=int(completed["latest_ack_timestamp"])
            if completed.get("latest_ack_timestamp")
            else None,
            failure=failure,
        )

    async def failure(self, job_id: str) -> str | None:
        answer = await self._call("GET", f"/jobs/{job_id}/exceptions", ok404=True) or {}
        entries = ((answer.get("exceptionHistory") or {}).get("entries")) or []
        if not entries:
            return None
        latest = max(entries, key=lambda e: int(e.get("timestamp") or 0))
        trace = str(latest.get("stacktrace") or "")
        causes = [line.strip() for line in trace.splitlines() if line.strip().startswith("Caused by:")]
        name = str(latest.get("exceptionName") or "")
        first = trace.splitlines()[0] if trace else name
        return (first + (f" ({causes[-1]})" if causes else ""))[:2000]

    async def stop_with_savepoint(self, job_id: str, trigger_id: str, target: str | None) -> None:
        body: dict[str, Any] = {"drain": False, "triggerId": trigger_id}
        if target:
            body["targetDirectory"] = target
        await self._call("POST", f"/jobs/{job_id}/stop", json=body)

    async def savepoint_status(self, job_id: str, trigger_id: str) -> TriggerSeen | None:
        """None when Flink does not know the trigger (never arrived, or a restarted JobManager)."""
        answer = await self._call("GET", f"/jobs/{job_id}/savepoints/{trigger_id}", ok404=True)
        if answer is None:
            return None
        if (answer.get("status") or {}).get("id") != "COMPLETED":
            return TriggerSeen(done=False)
        operation = answer.get("operation") or {}
        if operation.get("location"):
            return TriggerSeen(done=True, location=str(operation["location"]))
        cause = operation.get("failure-cause") or {}
        trace = str(cause.get("stack-trace") or cause.get("serialized-throwable") or "savepoint failed")
        return TriggerSeen(done=True, failure=trace.splitlines()[0][:2000])

    async def cancel(self, job_id: str) -> None:
        await self._call("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"}, ok404=True)

    async def dispose_savepoint(self, path: str) -> None:
        await self._call("POST", "/savepoint-disposal", json={"savepoint-path": path})
