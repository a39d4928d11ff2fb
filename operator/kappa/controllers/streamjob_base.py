"""What the StreamJob controller's parts share: the clients, and the one way they write status."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Any

import kopf

from kappa.adapters import metrics
from kappa.adapters.kube import Kube
from kappa.controllers.failpoints import intent
from kappa.controllers.job_runtimes import Runtimes
from kappa.controllers.lag import LagTracking
from kappa.controllers.schedule import Schedule
from kappa.controllers.status import write_status
from kappa.controllers.watches import copies
from kappa.machines.decision import Event


class StreamJobBase:
    def __init__(
        self,
        kube: Kube,
        lag: LagTracking,
        deployments: kopf.Index[Hashable, Any] | None = None,
        runs: kopf.Index[Hashable, Any] | None = None,
    ) -> None:
        self.kube = kube
        self.lag = lag
        self.schedule = Schedule()
        # The watch-fed indexes (controllers/watches.py); without them, a LIST per look.
        self.deployments = deployments
        self.runs = runs
        listed = (lambda ns, job: copies(deployments, (ns, job))) if deployments is not None else None
        self.runtimes = Runtimes(kube, listed)

    async def _write(
        self,
        obj: dict[str, Any],
        patch: dict[str, Any],
        conditions: list[Any],
        events: list[Event],
        generation: int,
        now: datetime,
    ) -> None:
        """Intent first: the status is written before any child is touched."""
        await write_status(self.kube, "StreamJob", obj, patch, conditions, events, generation, now)
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        reasons = [e.reason for e in events]
        metrics.streamjob_said(namespace, name, reasons, patch.get("phase"))
        intent("streamjob", namespace, name, reasons)
