"""CustomResourceDefinitions generated from the pydantic models: structural schemas, CEL, printer columns."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from kappa.api.base import (
    FLINK_DEPLOYMENT_NAME_MAX,
    GROUP,
    LABEL_VALUE_MAX,
    MAX_JOB_PLUS_VERSION,
    MAX_REPLAY_JOB_PLUS_VERSION,
    MAX_VIEW_NAME,
    OBJECT_NAME_MAX,
    VERSION,
    VIEW_CLAIM_SUFFIX,
    cel,
)
from kappa.api.materializedview import MaterializedViewSpec, MaterializedViewStatus
from kappa.api.replayrun import ReplayRunSpec, ReplayRunStatus
from kappa.api.streamjob import StreamJobSpec
from kappa.api.streamjob_status import StreamJobStatus

Schema = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: list[dict[str, Any]]
    root_rules: list[dict[str, Any]] = field(default_factory=list)
    spec_rules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _column(
    name: str, path: str, type_: str = "string", *, priority: int = 0, description: str = ""
) -> Schema:
    col: Schema = {"name": name, "type": type_, "jsonPath": path}
    if description:
        col["description"] = description
    if priority:
        col["priority"] = priority
    return col


_AGE = _column("Age", ".metadata.creationTimestamp", "date")
_READY = _column("Ready", '.status.conditions[?(@.type=="Ready")].status', priority=1)
_MESSAGE = _column("Message", '.status.conditions[?(@.type=="Ready")].message', priority=1)

STREAMJOB = Kind(
    kind="StreamJob",
    plural="streamjobs",
    short_name="sj",
    spec=StreamJobSpec,
    status=StreamJobStatus,
    description="A versioned Flink streaming job with savepoint upgrades, canary and automatic rollback.",
    columns=[
        _column("Version", ".spec.version", description="Desired version"),
        _column("Active", ".status.activeVersion", description="Version serving output"),
        _column("Phase", ".status.phase"),
        _column("Lag", ".status.lag", "integer", description="Records behind, active version"),
        _AGE,
        _READY,
        _MESSAGE,
    ],
    root_rules=[
        cel(
            "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
            "letter): it names FlinkDeployments and Services",
        ),
        cel(
            f"size(self.metadata.name) + size(self.spec.version) <= {MAX_JOB_PLUS_VERSION}",
            f"metadata.name and spec.version together must be at most {MAX_JOB_PLUS_VERSION} characters, so "
            "that the canary's FlinkDeployment {name}-{version}-canary fits the "
            f"{FLINK_DEPLOYMENT_NAME_MAX} characters FKO allows (it is Flink's kubernetes.cluster-id)",
            field_path=".spec.version",
        ),
    ],
)

REPLAYRUN = Kind(
    kind="ReplayRun",
    plural="replayruns",
    short_name="rr",
    spec=ReplayRunSpec,
    status=ReplayRunStatus,
    description="Replay the Kafka log through a new version into a new output, catch up, validate and "
    "cut over atomically, keeping a rollback window.",
    columns=[
        _column("Job", ".spec.jobRef.name"),
        _column("Version", ".spec.version"),
        _column("Phase", ".status.phase"),
        _column("Progress", ".status.progress.percent"),
        _column("Lag", ".status.lag.total", "integer"),
        _column("ETA", ".status.progress.eta"),
        _AGE,
        _READY,
        _MESSAGE,
    ],
    spec_rules=[
        cel(
            "self == oldSelf",
            "spec is immutable once a ReplayRun is created; use the kappa.dev/approve and kappa.dev/abort "
            "annotations, or create a new ReplayRun",
            reason="FieldValueForbidden",
        ),
        cel(
            f"size(self.jobRef.name) + size(self.version) <= {MAX_REPLAY_JOB_PLUS_VERSION}",
            f"jobRef.name and version together must be at most {MAX_REPLAY_JOB_PLUS_VERSION} characters, so "
            "that the replay's FlinkDeployment {jobRef.name}-{version} fits the "
            f"{FLINK_DEPLOYMENT_NAME_MAX} characters FKO allows (it is Flink's kubernetes.cluster-id)",
            field_path=".version",
        ),
        cel(
            "!has(self.from.timestamp) || !has(self.until.timestamp)"
            " || self.until.timestamp > self.from.timestamp",
            "until.timestamp must be after from.timestamp",
            field_path=".until.timestamp",
        ),
        cel(
            "!has(self.from.offsets) || !has(self.until.offsets) || self.until.offsets.all(u, "
            "self.from.offsets.all(f, "
            "f.topic != u.topic || f.partition != u.partition || f.offset <= u.offset))",
            "until.offsets must not lie before from.offsets: on each partition the end offset must be >= the "
            "start offset",
            field_path=".until.offsets",
        ),
    ],
    root_rules=[
        cel(
            f"size(self.metadata.name) <= {LABEL_VALUE_MAX}",
            f"metadata.name must be at most {LABEL_VALUE_MAX} characters: it is the value of the label "
            "kappa.dev/replayrun on the replay's FlinkDeployment",
        ),
    ],
)

MATERIALIZEDVIEW = Kind(
    kind="MaterializedView",
    plural="materializedviews",
    short_name="mv",
    spec=MaterializedViewSpec,
    status=MaterializedViewStatus,
    description="One stable name for readers, with versioned tables or topics underneath.",
    columns=[
        _column("Backend", ".spec.backend.type"),
        _column("Active", ".status.activeVersion"),
        _column("Previous", ".status.previousVersion"),
        _AGE,
        _READY,
    ],
    root_rules=[
        cel(
            f"size(self.metadata.name) <= {MAX_VIEW_NAME}",
            f"metadata.name must be at most {MAX_VIEW_NAME} characters: the Lease "
            f"{{name}}{VIEW_CLAIM_SUFFIX} through which a ReplayRun holds the view must fit the "
            f"{OBJECT_NAME_MAX} characters of a Kubernetes name",
        ),
    ],
)

KINDS: tuple[Kind, ...] = (STREAMJOB, REPLAYRUN, MATERIALIZEDVIEW)

# Keywords that the structural-schema subset of OpenAPI v3 accepts.
_KEPT = {
    "type",
    "description",
    "default",
    "enum",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-validations",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-int-or-string",
}


def structural(schema: Schema, defs: dict[str, Schema]) -> Schema:
    """Turn pydantic's JSON Schema into a Kubernetes structural schema: refs inlined, nulls dropped."""
    node = dict(schema)
    if "$ref" in node:
        target = defs[node.pop("$ref").split("/")[-1]]
        node = {**copy.deepcopy(target), **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = node.pop("allOf")[0]
        return structural({**inner, **node}, defs)
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        types = sorted(b.get("type", "") for b in branches)
        if types == ["integer", "string"]:
            node["x-kubernetes-int-or-string"] = True
        elif len(branches) == 1:
            return structural({**branches[0], **node}, defs)
        else:
            raise ValueError(f"unions are not structural: {branches}")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "exclusiveMinimum" in node:
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    if "exclusiveMaximum" in node:
        node["maximum"] = node.pop("exclusiveMaximum")
        node["exclusiveMaximum"] = True
    if node.get("default", 0) is None:
        del node["default"]
    if "enum" in node and "type" not in node:
        node["type"] = _json_type(node["enum"][0])

    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = structural(value, defs)
        elif key in _KEPT or key in ("exclusiveMinimum", "exclusiveMaximum"):
            out[key] = value
    if out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "required" in out and not out["required"]:
        del out["required"]
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def model_schema(model: type[BaseModel]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(raw, defs)


def build_crd(kind: Kind) -> Schema:
    """The CRD manifest of one kind."""
    spec = model_schema(kind.spec)
    spec["description"] = (kind.spec.__doc__ or "").strip()
    if kind.spec_rules:
        spec["x-kubernetes-validations"] = kind.spec_rules
    status = model_schema(kind.status)
    status["description"] = f"Observed state of the {kind.kind}, written only by the operator."
    root: Schema = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object: kappa.dev/v1alpha1."},
            "kind": {"type": "string", "description": f"Kind of this object: {kind.kind}."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if kind.root_rules:
        root["x-kubernetes-validations"] = kind.root_rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {
                "app.kubernetes.io/name": "kappa-operator",
                "app.kubernetes.io/part-of": "kappa-operator",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": [kind.short_name],
                "categories": ["kappa"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind.columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


CRD_DIRS = ("manifests/crds", "charts/kappa-operator/crds")
"""Where `kappa crds` writes the CRDs, relative to the repository: the kustomize base holds its own copy
(kustomize refuses files outside a base), and Helm installs a chart's crds/ before its templates. `make lint`
checks both."""


def all_crds() -> dict[str, Schema]:
    """File name under each of CRD_DIRS → CRD manifest."""
    return {f"{kind.crd_name}.yaml": build_crd(kind) for kind in KINDS}
