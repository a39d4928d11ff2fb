"""`World`: the three reconcilers, built with their public constructors, over one set of fakes (`FakeKube`,
its core API client for events and the ConfigMap alias, `FakeKafka` with `FakeLagTracking`, `FakeFko`), and
what a test does with them: put objects as a user would, take one look (`reconcile`) as the schedule would,
let FKO and the Flink jobs move, and read what a user reads (status, conditions, events, children)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from kappa.controllers.materializedview.reconcile import MaterializedViewReconciler
from kappa.controllers.replayrun.reconcile import ReplayRunReconciler
from kappa.controllers.streamjob.reconcile import StreamJobReconciler
from tests.fakes.fko import FakeFko
from tests.fakes.kafka import FakeKafka, FakeLagTracking
from tests.fakes.kube import FLINK, KAPPA, FakeKube

LOG = logging.getLogger("tests.controllers")


class World:
    def __init__(self, namespace: str = "shop") -> None:
        self.namespace = namespace
        # Unique per test: the operator keeps per-cluster state for the process (adapters/kafka/health.py).
        self.bootstrap = f"kafka-{uuid.uuid4().hex[:8]}.fake:9092"
        self.kube = FakeKube()
        self.kafka = FakeKafka()
        self.lag = FakeLagTracking(self.kafka)
        self.fko = FakeFko(self.kube)
        self.streamjobs = StreamJobReconciler(self.kube, self.lag)  # type: ignore[arg-type]
        self.replayruns = ReplayRunReconciler(self.kube, self.lag)  # type: ignore[arg-type]
        self.views = MaterializedViewReconciler(self.kube, self.lag)  # type: ignore[arg-type]

    # -- a user ---------------------------------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("metadata", {}).setdefault("namespace", self.namespace)
        return self.kube.put(obj)

    def edit(self, kind: str, name: str, change: Any) -> dict[str, Any]:
        return self.kube.edit(KAPPA, kind, self.namespace, name, change)

    # -- the operator and the world moving ----------------------------------------------------------

    async def look(self, kind: str, name: str) -> Any:
        """One look at the object, as the schedule or a watch event would start it; its events posted. The
        StreamJob watch has shown the job as it is (controllers/watches.py `wake_on_request`), as it has by
        the time a look starts, but for a write made in the same instant; and it shows the look's own writes
        after it."""
        if kind == "StreamJob":
            self._watch_streamjob(name)
            following = await self.streamjobs.reconcile(self.namespace, name, LOG)
            self._watch_streamjob(name)
        elif kind == "ReplayRun":
            following = await self.replayruns.reconcile(self.namespace, name)
        else:
            following = await self.views.reconcile(self.namespace, name)
        await settled()
        return following

    def _watch_streamjob(self, name: str) -> None:
        now = self.kube.object(KAPPA, "StreamJob", self.namespace, name)
        if now is not None:
            self.streamjobs.known.watched((self.namespace, name), now)

    async def flink(self, passes: int = 3) -> None:
        """FKO reconciles every FlinkDeployment `passes` times (fko.py: three bring a new job to RUNNING with
        a checkpoint after its start)."""
        await self.fko.step(passes)

    # -- what a user reads ----------------------------------------------------------------------------

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.kube.object(KAPPA, kind, self.namespace, name)
        assert found is not None, f"{kind} {name} not found"
        return found

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return dict(self.get(kind, name).get("status") or {})

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any]:
        found = [c for c in self.status(kind, name).get("conditions") or [] if c["type"] == type_]
        return found[0] if found else {}

    def events(self, kind: str, name: str) -> list[tuple[str, str, int]]:
        """(type, reason, count) of the Events about the object, oldest first."""
        return [
            (e["type"], e["reason"], int(e.get("count") or 1)) for e in self.kube.events(self.get(kind, name))
        ]

    def reasons(self, kind: str, name: str) -> list[str]:
        return [reason for _, reason, _ in self.events(kind, name)]

    def deployments(self, job: str) -> dict[str, dict[str, Any]]:
        """The job's FlinkDeployments by name."""
        found = self.kube.objects(FLINK, "FlinkDeployment", self.namespace, f"kappa.dev/job={job}")
        return {fd["metadata"]["name"]: fd for fd in found}


async def settled() -> None:
    """Wait for what a look left running in the background (events are posted as tasks, like kopf.event)."""
    while pending := [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]:
        _, late = await asyncio.wait(pending, timeout=10)
        if late:
            raise AssertionError(f"background tasks still running after 10 s: {late}")
