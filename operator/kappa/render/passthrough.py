"""spec.flink's pass-through fields → their places in a FlinkDeployment: pod templates with the environment in
Flink's container, logConfiguration, the high-availability configuration. A spec that uses none of them
renders nothing here, so its FlinkDeployment stays exactly as before these fields existed."""

from __future__ import annotations

import copy
from typing import Any

from kappa.api.flink import PODS_ONLY, FlinkSpec
from kappa.api.passthrough import MAIN_CONTAINER

MERGE_ARRAYS_BY_NAME = "kubernetes.operator.pod-template.merge-arrays-by-name"
"""FKO's per-resource option (KubernetesOperatorConfigOptions.POD_TEMPLATE_MERGE_BY_NAME, default false): how
FKO merges jobManager/taskManager.podTemplate over podTemplate (FlinkUtils.mergePodTemplates). By default it
merges lists by position, so a component template's first container would be merged into whatever container
comes first in podTemplate, and its env entries into ours by index."""
HA_TYPE_SINCE_1_17 = "high-availability.type"
HA_TYPE_BEFORE_1_17 = "high-availability"
"""Flink 1.17 renamed `high-availability` to `high-availability.type` (the old key stays a fallback); the
Flink 1.15 and 1.16 images read only the old one."""
HA_STORAGE_DIR = "high-availability.storageDir"


def high_availability_configuration(flink: FlinkSpec) -> dict[str, str]:
    """The flinkConfiguration that `highAvailability` stands for; empty without it."""
    ha = flink.high_availability
    if ha is None:
        return {}
    key = HA_TYPE_BEFORE_1_17 if flink.flink_version in ("v1_15", "v1_16") else HA_TYPE_SINCE_1_17
    return {key: "kubernetes", HA_STORAGE_DIR: ha.storage_dir}


def merge_configuration(flink: FlinkSpec) -> dict[str, str]:
    """FKO options the pod templates need: lists merged by name when the operator put env into podTemplate
    and a component template could be merged over it by position. A user's own setting is kept."""
    component = flink.job_manager.pod_template or flink.task_manager.pod_template
    if (flink.env or flink.env_from) and component and MERGE_ARRAYS_BY_NAME not in flink.flink_configuration:
        return {MERGE_ARRAYS_BY_NAME: "true"}
    return {}


def pod_template(flink: FlinkSpec) -> dict[str, Any] | None:
    """spec.podTemplate: the user's, with env and envFrom in Flink's container (added, last in the list, if
    the template has none). In that container `env` replaces a variable of the same name and is appended
    after the others; envFrom is appended after the template's own."""
    template = copy.deepcopy(flink.pod_template.wire()) if flink.pod_template else None
    if not (flink.env or flink.env_from):
        return template
    template = template or {}
    spec = template.setdefault("spec", {})
    containers: list[dict[str, Any]] = spec.setdefault("containers", [])
    main = next((c for c in containers if isinstance(c, dict) and c.get("name") == MAIN_CONTAINER), None)
    if main is None:
        main = {"name": MAIN_CONTAINER}
        containers.append(main)
    if flink.env:
        ours = [e.wire() for e in flink.env]
        names = {e["name"] for e in ours}
        kept = [e for e in main.get("env") or [] if not (isinstance(e, dict) and e.get("name") in names)]
        main["env"] = [*kept, *ours]
    if flink.env_from:
        main["envFrom"] = [*(main.get("envFrom") or []), *(e.wire() for e in flink.env_from)]
    return template


def spec_fields(flink: FlinkSpec) -> dict[str, Any]:
    """Top-level FlinkDeployment spec fields: podTemplate and logConfiguration, when used."""
    fields: dict[str, Any] = {}
    template = pod_template(flink)
    if template is not None:
        fields["podTemplate"] = template
    if flink.log_configuration:
        fields["logConfiguration"] = dict(flink.log_configuration)
    return fields


def set_pod_fields(flink: FlinkSpec) -> list[str]:
    """The pod-shaping fields this spec sets (streamjob.PODS_ONLY), by their spec.flink paths: what a Session
    runtime cannot honour. Admission refuses them with an explicit `runtime.type: Session`; a job that runs on
    Session only because it is the operator's default (`kappa run --runtime Session`) is not refused there."""
    found = {
        "podTemplate": flink.pod_template is not None,
        "jobManager.podTemplate": flink.job_manager.pod_template is not None,
        "taskManager.podTemplate": flink.task_manager.pod_template is not None,
        "env": bool(flink.env),
        "envFrom": bool(flink.env_from),
        "logConfiguration": bool(flink.log_configuration),
        "highAvailability": flink.high_availability is not None,
    }
    return [f for f in PODS_ONLY if found[f]]
