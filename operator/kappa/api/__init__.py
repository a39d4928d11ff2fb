"""The API of group kappa.dev/v1alpha1: pydantic models of the three kinds, the source of the CRD schemas."""

from kappa.api.base import GROUP, VERSION
from kappa.api.materializedview import MaterializedViewSpec, MaterializedViewStatus
from kappa.api.replayrun import ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus

__all__ = [
    "GROUP",
    "VERSION",
    "MaterializedViewSpec",
    "MaterializedViewStatus",
    "ReplayRunSpec",
    "ReplayRunStatus",
    "StreamJobSpec",
    "StreamJobStatus",
]
