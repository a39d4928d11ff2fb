"""Bad input is refused at admission, with a message that names the field.

Each file under admission/ is one case. Its header says what the API server must answer:
`# expect-field:` (the field path that must be named) and `# expect:` (the rule's message), and optionally
`# not-expect:` (words that would mislead, e.g. "not both" when neither is set). When a file holds several
documents, all but the last are created first and the last must be refused (update rules).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kappa.api.base import (
    DURATION_RE,
    KAFKA_TOPIC_MAX,
    LABEL_VALUE_MAX,
    MAX_JOB_PLUS_VERSION,
    MAX_REPLAY_JOB_PLUS_VERSION,
    MAX_TABLE_BASE,
    MAX_TOPIC_BASE,
    MAX_VERSION,
    MAX_VIEW_NAME,
    POSTGRES_IDENTIFIER_MAX,
)
from tests.integration.testbed import ROOT, Kubectl

CASES = sorted((Path(__file__).parent / "admission").glob("*.yaml"))


def expectations(path: Path, keys: tuple[str, ...] = ("# expect-field: ", "# expect: ")) -> list[str]:
    found = []
    for line in path.read_text().splitlines():
        for key in keys:
            if line.startswith(key):
                found.append(line[len(key) :].strip())
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_invalid_resource_is_rejected_naming_the_field(kubectl: Kubectl, case: Path) -> None:
    docs = [d for d in case.read_text().split("\n---\n") if d.strip()]
    for setup in docs[:-1]:
        kubectl.apply(setup)
    result = kubectl.apply(docs[-1], check=False)
    assert result.returncode != 0, f"{case.name} was accepted: {result.stdout}"
    for expected in expectations(case):
        assert expected in result.stderr, f"{case.name}: {expected!r} not in {result.stderr!r}"
    for misleading in expectations(case, ("# not-expect: ",)):
        assert misleading not in result.stderr, f"{case.name}: {misleading!r} in {result.stderr!r}"


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_the_cases_exercise_every_cel_rule() -> None:
    """Every CEL message in manifests/crds/ is the expected answer of at least one case."""
    messages = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations", []):
                messages.add(rule["message"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for crd in (ROOT / "manifests" / "crds").glob("*.yaml"):
        walk(yaml.safe_load(crd.read_text()))
    expected = {e for case in CASES for e in expectations(case)}
    untested = {m for m in messages if not any(m.startswith(e) or e in m for e in expected)}
    assert messages, "no CEL rules found"
    assert not untested, f"CEL rules without an admission case: {sorted(untested)}"


# Every duration that is a deadline, where it sits in a valid object of its kind: 0s is refused, naming it.
# stableFor and rollbackWindow are not deadlines: 0s means "at the first look" and "no rollback window".
DEADLINES = [
    ("StreamJob", "spec.upgrade.readinessTimeout"),
    ("StreamJob", "spec.upgrade.savepointTimeout"),
    ("StreamJob", "spec.upgrade.canary.duration"),
    ("ReplayRun", "spec.catchUp.timeout"),
    ("ReplayRun", "spec.validation.timeout"),
    ("ReplayRun", "spec.timeouts.pending"),
    ("ReplayRun", "spec.timeouts.preflight"),
    ("ReplayRun", "spec.timeouts.replaying"),
    ("ReplayRun", "spec.timeouts.awaitingApproval"),
    ("ReplayRun", "spec.timeouts.cuttingOver"),
    ("ReplayRun", "spec.timeouts.cleanup"),
    ("MaterializedView", "spec.backend.postgres.lockTimeout"),
]
MAY_BE_ZERO = [
    ("StreamJob", "spec.upgrade.stableFor"),
    ("StreamJob", "spec.upgrade.rollbackWindow"),
    ("ReplayRun", "spec.catchUp.stableFor"),
    ("ReplayRun", "spec.rollbackWindow"),
]


def valid(kind: str, name: str = "ok") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "StreamJob": {
            "version": "v1",
            "source": {"kafka": {"bootstrapServers": "127.0.0.1:9092"}, "topics": ["clicks"]},
            "output": {"topic": {"base": "out"}},
            "flink": {"image": "img", "sql": ["SELECT 1"]},
        },
        "ReplayRun": {"jobRef": {"name": "sessionizer"}, "version": "v2", "from": {"earliest": True}},
        "MaterializedView": {
            "backend": {"type": "postgres", "postgres": {"secretRef": {"name": "db"}, "view": "sessions"}}
        },
    }[kind]
    return {"apiVersion": "kappa.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def with_field(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = obj
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return obj


def test_every_duration_field_is_listed_as_deadline_or_may_be_zero() -> None:
    """A new duration field must be sorted into one of the two tables above."""
    listed = {(kind, path) for kind, path in DEADLINES + MAY_BE_ZERO}
    found = set()

    def walk(node: dict[str, Any], path: str, kind: str) -> None:
        if node.get("pattern") == DURATION_RE:
            found.add((kind, path))
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}", kind)

    for crd in (ROOT / "manifests" / "crds").glob("*.yaml"):
        doc = yaml.safe_load(crd.read_text())
        schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        walk(schema, "spec", doc["spec"]["names"]["kind"])
    assert found == listed


def test_a_deadline_of_0s_is_refused_naming_the_field(kubectl: Kubectl) -> None:
    """One namespace for the whole table (about 10 s)."""
    wrong = []
    for kind, path in DEADLINES:
        result = kubectl.apply(with_field(valid(kind), path, "0s"), check=False)
        if result.returncode == 0:
            wrong.append(f"{path}: 0s was accepted")
        elif f'{path}: Invalid value: "0s": must be longer than 0s' not in result.stderr:
            wrong.append(f"{path}: {result.stderr.strip()}")
    assert not wrong


def test_zero_where_zero_means_something_and_names_at_their_limits_are_accepted(kubectl: Kubectl) -> None:
    """The bounds are no tighter than the derived names need: every one at its limit is accepted."""
    objs = []
    for i, (kind, path) in enumerate(MAY_BE_ZERO):
        objs.append(with_field(valid(kind, f"zero-{i}"), path, "0s"))
    job = valid("StreamJob", "j" * (MAX_JOB_PLUS_VERSION - MAX_VERSION))
    job["spec"]["version"] = "v" * MAX_VERSION
    job["spec"]["output"] = {"topic": {"base": "t" * MAX_TOPIC_BASE}, "table": {"base": "t" * MAX_TABLE_BASE}}
    objs.append(job)
    run = valid("ReplayRun", "r" * LABEL_VALUE_MAX)
    run["spec"]["jobRef"]["name"] = "j" * (MAX_REPLAY_JOB_PLUS_VERSION - MAX_VERSION)
    run["spec"]["version"] = "v" * MAX_VERSION
    run["spec"]["output"] = {"topic": "t" * KAFKA_TOPIC_MAX, "table": "t" * POSTGRES_IDENTIFIER_MAX}
    objs.append(run)
    objs.append(valid("MaterializedView", "m" * MAX_VIEW_NAME))
    for obj in objs:
        kubectl.apply(obj)
