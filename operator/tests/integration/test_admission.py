"""Bad input is refused at admission, with a message that names the field.

Each file under admission/ is one case. Its header says what the API server must answer:
`# expect-field:` (the field path that must be named) and `# expect:` (the rule's message). When a file
holds several documents, all but the last are created first and the last must be refused (update rules).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.testbed import ROOT, Kubectl

CASES = sorted((Path(__file__).parent / "admission").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    found = []
    for line in path.read_text().splitlines():
        for key in ("# expect-field: ", "# expect: "):
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


def test_there_are_at_least_25_cases() -> None:
    assert len(CASES) >= 25


def test_the_cases_exercise_every_cel_rule() -> None:
    """Every CEL message in crds/ is the expected answer of at least one case."""
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

    for crd in (ROOT / "crds").glob("*.yaml"):
        walk(yaml.safe_load(crd.read_text()))
    expected = {e for case in CASES for e in expectations(case)}
    untested = {m for m in messages if not any(m.startswith(e) or e in m for e in expected)}
    assert messages, "no CEL rules found"
    assert not untested, f"CEL rules without an admission case: {sorted(untested)}"
