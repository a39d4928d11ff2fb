"""The seam between the machines and a stream processor: the `JobRuntime` protocol every runtime
implements (each version's job as a FlinkDeployment-shaped object: `spec.job.state` desired, `status` observed
in FKO's fields), `RuntimeUnavailable` for an outage of its platform, and what disposing of a savepoint
answers (`Disposal`)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

FD_API = "flink.apache.org/v1beta1"

Disposal = Literal["disposed", "pending", "unsupported"]


class RuntimeUnavailable(Exception):
    """The runtime's platform cannot be reached: an outage, reported as one."""


class JobRuntime(Protocol):
    """Each version's job, as FlinkDeployment-shaped objects: `spec.job.state` is the desired state, `status`
    what the runtime observed, in FKO's fields."""

    name: str
    asks_for_checkpoints: bool
    """The checkpoints the Checkpointed gate reads are those a deployment asks the runtime for, in its
    flinkConfiguration (FKO, machines/fko.py); False: the runtime reports the job's own checkpoints."""

    async def select(self, namespace: str, job: str) -> list[dict[str, Any]]:
        """Every version's deployment of a StreamJob (label kappa.dev/job)."""
        ...

    async def get(self, namespace: str, deployment: str) -> dict[str, Any] | None: ...

    async def apply(self, deployment: dict[str, Any]) -> None:
        """Make the rendered FlinkDeployment the desired state of its version; idempotent."""
        ...

    async def delete(self, namespace: str, deployment: str) -> bool:
        """Stop the version's job (no savepoint) and forget it; False when it was already gone."""
        ...

    async def release(self, namespace: str, job: str, *, abandon: bool = False) -> list[str]:
        """The StreamJob is going: stop whatever still runs that the garbage collector would not stop.
        `abandon`: the runtime is unreachable and the deletion will not wait any longer; let go anyway and
        return the ids of the jobs that may still run there, for someone to cancel."""
        ...

    async def dispose_savepoint(self, namespace: str, deployment: str, path: str) -> Disposal:
        """Dispose of a savepoint no rollback needs any more, through `deployment` (one that runs, in the
        StreamJob's namespace). Idempotent: "pending" asks to be called again later; "disposed" once it
        is done or irrevocably handed over; "unsupported" when this runtime cannot dispose of savepoints."""
        ...
