"""Operator-wide settings: Kopf keeps its bookkeeping in status, never in annotations."""

from __future__ import annotations

from typing import Any

import kopf

FIELD_MANAGER = "kappa-operator"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # The operator never writes spec, labels or annotations of user resources: Argo CD must see no drift.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field="status.kopf.last-handled-configuration"
    )
    settings.persistence.finalizer = "kappa.dev/finalizer"
    # Our own events say what happened; Kopf's per-handler log lines would only repeat it as events.
    settings.posting.loggers = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 8
