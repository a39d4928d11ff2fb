"""Kopf wiring: observe (adapters) → decide (machines) → act (adapters) → status, events, metrics.

Importing this package registers the handlers of all three kinds.
"""

from kappa.controllers import health, lag, materializedview, replayrun, runtime, streamjob, watches

__all__ = ["health", "lag", "materializedview", "replayrun", "runtime", "streamjob", "watches"]
