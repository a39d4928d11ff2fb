"""The Dockerfiles, read as Docker reads them, for what hadolint (make lint) does not check: the operator's
bases pinned by tag and digest, a numeric non-root user, and every file a COPY names inside the build context
that .dockerignore leaves (no Docker engine here: a COPY of an ignored file fails only at `docker build`)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "testbed" / "flink" / "Dockerfile"]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def bases(dockerfile: Path) -> list[str]:
    """The images the stages start from, ARG defaults substituted; stage names left out."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images = []
    for word, rest in instructions(dockerfile):
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
        elif word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            if image not in stages:
                images.append(image)
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
    return images


def test_the_operator_image_starts_from_a_full_version_tag_and_its_digest() -> None:
    images = bases(ROOT / "Dockerfile")
    assert images, "no FROM"
    for image in images:
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*@sha256:[0-9a-f]{64}", image), image


def test_the_operator_runs_as_a_numeric_user_that_is_not_root() -> None:
    users = [rest for word, rest in instructions(ROOT / "Dockerfile") if word == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, users[-1]  # numeric: runAsNonRoot can check it


def included(path: str, patterns: list[str]) -> bool:
    """.dockerignore: the last pattern that matches decides; `!` re-includes."""
    keep = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, bare) or fnmatch.fnmatch(path, bare + "/*"):
            keep = negated
    return keep


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_copy_names_is_in_the_build_context(dockerfile: Path) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]
    copied = 0
    for word, rest in instructions(dockerfile):
        if word not in ("COPY", "ADD") or "--from=" in rest:
            continue
        sources = rest.split()[:-1]
        for source in (s for s in sources if not s.startswith("--")):
            found = ROOT / source
            assert found.exists(), f"{dockerfile.name}: {source} is not in the repository"
            files = [found] if found.is_file() else [f for f in found.rglob("*") if f.is_file()]
            files = [f for f in files if "__pycache__" not in f.parts and f.suffix != ".pyc"]
            missing = [
                str(f.relative_to(ROOT)) for f in files if not included(str(f.relative_to(ROOT)), patterns)
            ]
            assert not missing, f"{dockerfile.name}: .dockerignore leaves out {missing[:5]}"
            copied += len(files)
    assert copied, f"{dockerfile.name} copies nothing from the context"
