"""`FakeFko`: the Flink Kubernetes Operator in memory. It is the FKO double of tests/doubles/fko.py
(`FakeFlinkOperator`: FKO 1.10's spec reconcile, observer, checkpoint triggers, lifecycle and status, field
for field) with its watch and worker thread taken away: each `step()` is one pass of FKO over every
FlinkDeployment in a `FakeKube`, and it writes the whole status (as FKO's StatusRecorder) and FKO's Events
into that store. So the StreamJob and ReplayRun controllers read here exactly the status they read against
the double on a real API server, and the double's scripts work the same (`savepoint_fails`, `crash_loop`,
`deploy_fails`, `start_delay`).

Time, in a pass: deploys take no time (start_delay 0) and FKO takes a checkpoint it triggered in no time.
Each pass after the first one of a running job counts as one `kubernetes.operator.periodic.checkpoint.
interval` gone by, so FKO triggers a checkpoint at a pass and reports it completed at the next: a new job is
RUNNING after one pass and shows a checkpoint after its start (the readiness gate) after three.

Not modelled (beyond what the double leaves out): FlinkStateSnapshots (savepoint disposal), FlinkSessionJobs.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.doubles.fko import FakeFlinkOperator, _Deployment
from tests.fakes.kube import FLINK, FakeKube


class FakeFko(FakeFlinkOperator):
    def __init__(self, kube: FakeKube) -> None:
        # The double's watch is never started: no API server is asked for anything.
        super().__init__("in-memory", start_delay=0.0, stable_after=0.0, checkpoint_duration=0.0)
        self.kube = kube

    async def step(self, passes: int = 1) -> None:
        """`passes` reconciles of every FlinkDeployment, each after a checkpoint interval (see above)."""
        for _ in range(passes):
            for fd in self.kube.objects(FLINK, "FlinkDeployment"):
                meta = fd["metadata"]
                with self._lock:
                    d = self._deployments.get((meta["namespace"], meta["name"]))
                    if d is not None and d.uid == meta["uid"] and d.last_periodic_trigger_ms is not None:
                        d.last_periodic_trigger_ms = 0  # the periodic checkpoint interval has passed
                self._reconcile(None, None, fd)  # type: ignore[arg-type]
                if self.errors:
                    raise AssertionError(f"the FKO model failed: {self.errors}")

    # -- where the double writes: here, the in-memory store -------------------------------------------

    def _write(self, custom: Any, d: _Deployment, obj: dict[str, Any], status: dict[str, Any]) -> None:
        written = self.kube.replace_status(obj, status)
        with self._lock:
            d.written = copy.deepcopy(status)
            if not written:
                d.gone = True

    def _event(
        self, core: Any, obj: dict[str, Any], type_: str, reason: str, message: str, component: str
    ) -> None:
        meta = obj["metadata"]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.kube.store.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": f"{meta['name']}.{uuid.uuid4().hex[:10]}",
                    "namespace": meta["namespace"],
                },
                "involvedObject": {
                    "apiVersion": FLINK,
                    "kind": "FlinkDeployment",
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta["uid"],
                },
                "type": type_,
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "reportingComponent": "flink-kubernetes-operator",
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
        )
