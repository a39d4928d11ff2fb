"""Shared building blocks of the kappa.dev models: camelCase fields, CEL rules, names, durations, bounds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

GROUP = "kappa.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Go-style durations as used across the Kubernetes ecosystem: 90s, 5m, 1h30m, 500ms.
DURATION_RE = r"^([0-9]+(ms|s|m|h))+$"
TOPIC_RE = r"^[a-zA-Z0-9._-]+$"
SQL_IDENTIFIER_RE = r"^[a-z_][a-z0-9_]*$"


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; the apiserver answers with `message` when `rule` is false."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def validated(*rules: dict[str, Any]) -> ConfigDict:
    """Model config carrying CEL rules for the object the model describes."""
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": list(rules)})


def exactly_one(fields: list[str]) -> str:
    """A CEL expression true when exactly one of the optional `fields` is set."""
    terms = " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields)
    return f"{terms} == 1"


def at_most_one(fields: list[str]) -> str:
    terms = " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields)
    return f"{terms} <= 1"


def _metav1_time(value: datetime) -> str:
    """metav1.Time on the wire: whole seconds in UTC (as controllers/status.ts writes it)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[datetime, PlainSerializer(_metav1_time, return_type=str, when_used="json-unless-none")]
"""A datetime in status, written as metav1.Time: a look that changes nothing writes nothing."""


class KappaModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def whole(self) -> dict[str, Any]:
        """A status sub-object as a merge patch that replaces the stored one: every field, the unset ones as
        None, which the merge patch deletes (`wire()` leaves them out, which would keep a stale value)."""
        return self.model_dump(by_alias=True, mode="json")

    def given(self) -> dict[str, Any]:
        """A status sub-object as a merge patch of the fields it was given: a None among them deletes that
        key, the fields not given stay as stored."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


MAX_VERSION = 20
"""Characters of a version name: part of every derived name."""

# The limits of the names the operator derives (render/names.py), and the longest inputs that keep every
# derived name inside its limit for any version (at most MAX_VERSION characters) and the canary's suffix.
KAFKA_TOPIC_MAX = 249
"""Kafka refuses longer topic names."""
POSTGRES_IDENTIFIER_MAX = 63
"""PostgreSQL truncates longer identifiers (NAMEDATALEN - 1 bytes), so two versions' tables could collide."""
FLINK_DEPLOYMENT_NAME_MAX = 45
"""FKO's validator refuses a longer FlinkDeployment name: it is Flink's kubernetes.cluster-id (at most 45
characters), from which Flink names the JobManager Deployment, Services `{name}` and `{name}-rest`, ConfigMaps
and the label `app: {name}`."""
LABEL_VALUE_MAX = 63
"""Kubernetes label values."""
CANARY_SUFFIX = "-canary"
"""A canary's version in derived names is `{version}-canary`: deployment, group, shadow topic and table."""
MAX_TOPIC_BASE = KAFKA_TOPIC_MAX - len(".") - MAX_VERSION - len(CANARY_SUFFIX)
"""221: the canary's shadow topic `{base}.{version}-canary` fits Kafka's 249."""
MAX_TABLE_BASE = POSTGRES_IDENTIFIER_MAX - len("_") - MAX_VERSION - len("_canary")
"""35: the canary's table `{base}_{version}_canary` fits PostgreSQL's 63."""
MAX_JOB_PLUS_VERSION = FLINK_DEPLOYMENT_NAME_MAX - len("-") - len(CANARY_SUFFIX)
"""37: a StreamJob's canary FlinkDeployment `{job}-{version}-canary` fits FKO's 45."""
MAX_REPLAY_JOB_PLUS_VERSION = FLINK_DEPLOYMENT_NAME_MAX - len("-")
"""44: a ReplayRun's FlinkDeployment `{job}-{version}` fits FKO's 45."""
OBJECT_NAME_MAX = 253
"""Kubernetes object names (DNS-1123 subdomains)."""
VIEW_CLAIM_SUFFIX = ".view-claim"
"""The Lease `{view}.view-claim` through which one ReplayRun at a time holds a MaterializedView."""
MAX_VIEW_NAME = OBJECT_NAME_MAX - len(VIEW_CLAIM_SUFFIX)
"""242: a MaterializedView's claim Lease fits a Kubernetes name."""
OUTPUT_TOPIC_RE = r"^[a-z0-9][a-z0-9._-]*$"
"""Topics the operator creates: Strimzi names the KafkaTopic after the topic ('.' and '_' become '-'), and a
Kubernetes name is lowercase and starts with a letter or digit (DNS-1123)."""


def version_name(description: str) -> Any:
    """A version name that is safe inside DNS labels, resource names and consumer group ids."""
    return Field(
        min_length=1,
        max_length=MAX_VERSION,
        description=description,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches('{DNS_LABEL_RE}')",
                    "must be usable in a DNS label: lowercase letters, digits and '-', "
                    "starting and ending with a letter or digit (e.g. v3)",
                    reason="FieldValueInvalid",
                )
            ]
        },
    )


def _dns_label_part(value: str) -> str:
    # Mirrors the CEL rule, for objects that reached us without admission (an old CRD, a test).
    if not re.fullmatch(DNS_LABEL_RE, value):
        raise ValueError("must be usable in a DNS label: lowercase letters, digits and '-' (e.g. v3)")
    return value


VersionName = Annotated[
    str,
    version_name(
        "A logic version, e.g. `v3`. Part of every derived name: together with a StreamJob's metadata.name "
        f"at most {MAX_JOB_PLUS_VERSION} characters, with a ReplayRun's jobRef.name at most "
        f"{MAX_REPLAY_JOB_PLUS_VERSION} (FKO allows {FLINK_DEPLOYMENT_NAME_MAX} for a FlinkDeployment name)."
    ),
    AfterValidator(_dns_label_part),
]
Duration = Annotated[str, Field(pattern=DURATION_RE, max_length=32)]
"""A duration that may be 0s (a stableFor, a rollback window)."""


def positive_duration(message: str) -> Any:
    return Field(
        pattern=DURATION_RE,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("duration(self) > duration('0s')", message, reason="FieldValueInvalid")
            ]
        },
    )


Deadline = Annotated[
    str, positive_duration("must be longer than 0s: it is a deadline, and 0s expires at once")
]
"""A duration after which something is given up: 0s would give up before anything could happen."""
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> timedelta:
    """A Duration field's value as a timedelta: "1h30m" → 1.5 h."""
    if not re.fullmatch(DURATION_RE, text):
        raise ValueError(f"not a duration: {text!r}")
    return timedelta(
        seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"([0-9]+)(ms|s|m|h)", text))
    )


TopicName = Annotated[str, Field(min_length=1, max_length=KAFKA_TOPIC_MAX, pattern=TOPIC_RE)]
SqlIdentifier = Annotated[
    str, Field(min_length=1, max_length=POSTGRES_IDENTIFIER_MAX, pattern=SQL_IDENTIFIER_RE)
]
_LOWERCASE_TOPIC = cel(
    f"self.matches('{OUTPUT_TOPIC_RE}')",
    "must be lowercase letters, digits, '.', '_' or '-', starting with a letter or digit: the operator "
    "creates this topic, and Strimzi's KafkaTopic is named after it (a lowercase DNS-1123 name)",
    reason="FieldValueInvalid",
)
OutputTopic = Annotated[
    str,
    Field(
        min_length=1,
        max_length=KAFKA_TOPIC_MAX,
        pattern=TOPIC_RE,
        json_schema_extra={"x-kubernetes-validations": [_LOWERCASE_TOPIC]},
    ),
]
"""A topic the operator creates under this exact name."""
TopicBase = Annotated[
    str,
    Field(
        min_length=1,
        max_length=KAFKA_TOPIC_MAX,
        pattern=TOPIC_RE,
        json_schema_extra={
            "x-kubernetes-validations": [
                _LOWERCASE_TOPIC,
                cel(
                    f"size(self) <= {MAX_TOPIC_BASE}",
                    f"must be at most {MAX_TOPIC_BASE} characters: versions write `{{base}}.{{version}}` and "
                    f"a canary `{{base}}.{{version}}-canary`, which must fit Kafka's {KAFKA_TOPIC_MAX} "
                    f"with a {MAX_VERSION}-character version",
                    reason="FieldValueInvalid",
                ),
            ]
        },
    ),
]
"""The base of versioned topics `{base}.{version}`."""
TableBase = Annotated[
    str,
    Field(
        min_length=1,
        max_length=POSTGRES_IDENTIFIER_MAX,
        pattern=SQL_IDENTIFIER_RE,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"size(self) <= {MAX_TABLE_BASE}",
                    f"must be at most {MAX_TABLE_BASE} characters: versions write `{{base}}_{{version}}` and "
                    f"a canary `{{base}}_{{version}}_canary`, which must fit PostgreSQL's "
                    f"{POSTGRES_IDENTIFIER_MAX}-byte identifiers with a {MAX_VERSION}-character version",
                    reason="FieldValueInvalid",
                )
            ]
        },
    ),
]
"""The base of versioned tables `{base}_{version}`."""
SqlStatement = Annotated[
    str,
    Field(
        max_length=65536,
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.trim() != ''", "a SQL statement must not be empty", reason="FieldValueRequired")
            ]
        },
    ),
]
ObjectName = Annotated[
    str, Field(min_length=1, max_length=OBJECT_NAME_MAX, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]


def defaulted(model: type[BaseModel], description: str) -> Any:
    """A nested object that the API server fills with its defaults when the user leaves it out."""
    default = model().model_dump(by_alias=True, exclude_none=True, mode="json")
    return Field(default_factory=model, description=description, json_schema_extra={"default": default})


class Bounds(KappaModel):
    """An inclusive range [min, max]."""

    model_config = validated(
        cel("!has(self.min) || !has(self.max) || self.min <= self.max", "min must be <= max")
    )

    min: float | None = Field(default=None, ge=0, description="Lower bound, inclusive.")
    max: float | None = Field(default=None, ge=0, description="Upper bound, inclusive.")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KappaModel):
    """A kstatus-compatible condition."""

    type: str = Field(max_length=64, description="Ready, Reconciling, Stalled, or a domain condition.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=128, description="CamelCase reason for the last transition.")
    message: str = Field(default="", max_length=4096, description="Human-readable detail.")
    observed_generation: int = Field(
        default=0, ge=0, description="metadata.generation this condition reflects."
    )
    last_transition_time: datetime = Field(description="When status last changed.")


def conditions_field() -> Any:
    return Field(
        default_factory=list,
        max_length=32,
        description="kstatus conditions: Ready, Reconciling, Stalled, and domain conditions.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


def kopf_field() -> Any:
    return Field(
        default=None,
        description="Operator bookkeeping (handler progress, last handled spec). Not for users.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class HandledRequests(KappaModel):
    """Imperative requests (annotations `kappa.dev/<verb>`) the operator has handled, echoed by id."""

    approve: str | None = Field(
        default=None, max_length=128, description="Last handled kappa.dev/approve id."
    )
    abort: str | None = Field(default=None, max_length=128, description="Last handled kappa.dev/abort id.")
    rollback: str | None = Field(
        default=None, max_length=128, description="Last handled kappa.dev/rollback id."
    )
    resync: str | None = Field(default=None, max_length=128, description="Last handled kappa.dev/resync id.")


class CommonStatus(KappaModel):
    """Status fields every kind carries."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the operator last reconciled."
    )
    conditions: list[Condition] = conditions_field()
    handled_requests: HandledRequests | None = Field(default=None, description="Echo of handled requests.")
    kopf: dict[str, Any] | None = kopf_field()

    @classmethod
    def of(cls, obj: dict[str, Any]) -> Self:
        """The typed status of an object as the API server returned it (an object not yet looked at: empty).
        Every read of status in the controllers goes through this; fields the model does not know are
        ignored."""
        return cls.model_validate(obj.get("status") or {})


def merge_patch_changes(target: Any, patch: Any) -> bool:
    """Whether a JSON merge patch (RFC 7386, as the status writes send it) would change `target`: a patch
    that changes nothing is not sent (one request less per resource and look at rest)."""
    if not isinstance(patch, dict):
        return bool(patch != target)
    if not isinstance(target, dict):
        return True
    for key, value in patch.items():
        if value is None:
            if key in target:
                return True
        elif key not in target:
            return True
        elif isinstance(value, dict):
            if merge_patch_changes(target[key], value):
                return True
        elif value != target[key]:
            return True
    return False


def apply_merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a JSON merge patch in place, as the API server does: what the next write compares against."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            apply_merge_patch(current, value)
        else:
            target[key] = value
