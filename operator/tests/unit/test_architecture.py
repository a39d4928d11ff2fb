"""ARCHITECTURE.md is a map a newcomer trusts: every module and directory it names exists, and every package
of operator/kappa has its place in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "ARCHITECTURE.md"
PACKAGE = ROOT / "operator" / "kappa"

# `machines/replay_phases.py`, `controllers/replayrun/`, `adapters/kafka/admin.py`: paths inside
# operator/kappa; `docs/cli.md`, `operator/tests/unit/`: paths from the repository root.
NAMED = re.compile(r"`([A-Za-z0-9_./-]+(?:\.py|\.md|/))`")


def named_paths() -> list[str]:
    return sorted(set(NAMED.findall(DOC.read_text())))


def resolve(name: str) -> Path | None:
    for base in (PACKAGE, ROOT):
        if (base / name).exists():
            return base / name
    return None


def test_the_map_names_enough_to_be_one() -> None:
    assert len(named_paths()) >= 40, named_paths()


def test_every_module_and_directory_it_names_exists() -> None:
    missing = [name for name in named_paths() if resolve(name) is None]
    assert missing == [], f"ARCHITECTURE.md names what does not exist: {missing}"


def test_every_package_of_the_operator_has_its_place() -> None:
    inits = [p for p in PACKAGE.glob("*/**/__init__.py") if p.parent != PACKAGE]
    packages = sorted(str(p.parent.relative_to(PACKAGE)) + "/" for p in inits)
    named = set(named_paths())
    assert [p for p in packages if p not in named] == [], "packages ARCHITECTURE.md does not place"
