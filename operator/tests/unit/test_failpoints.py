"""Failpoints die as under SIGKILL (exit 86) exactly at the armed point: its hit, its namespace, and the N-th
side effect after a recorded transition."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kappa.controllers.failpoints import EXIT_CODE

SCRIPT = """
import sys
from kappa.controllers.failpoints import acted, crash_at, intent
for step in sys.argv[1:]:
    print(step, flush=True)
    kind, _, rest = step.partition("=")
    if kind == "at":
        crash_at(rest, "ns", "detail")
    elif kind == "intent":
        intent("streamjob", "ns", "job", rest.split("+") if rest else [])
    elif kind == "acted":
        acted("streamjob", "ns", "job")
"""


def run(points: str, *steps: str, file: Path | None = None) -> tuple[int, list[str]]:
    env = {"KAPPA_FAILPOINTS": points, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if file is not None:
        env["KAPPA_FAILPOINTS_FILE"] = str(file)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *steps], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout.split()


@pytest.mark.parametrize(
    ("points", "steps", "code", "reached"),
    [
        ("p", ["at=q", "at=p", "at=p"], EXIT_CODE, 2),
        ("p#2", ["at=p", "at=q", "at=p", "at=p"], EXIT_CODE, 3),
        ("p@other", ["at=p", "at=p"], 0, 2),
        ("p@ns", ["at=q", "at=p", "at=p"], EXIT_CODE, 2),
        ("", ["at=p", "intent=UpgradeStarted", "acted"], 0, 3),
    ],
)
def test_a_point_dies_at_its_hit_in_its_namespace(
    points: str, steps: list[str], code: int, reached: int
) -> None:
    assert run(points, *steps) == (code, steps[:reached])


def test_a_transition_dies_after_the_write_or_after_its_nth_side_effect() -> None:
    steps = ["intent=SavepointTaken", "acted", "acted", "intent=", "acted", "acted", "acted"]
    assert run("streamjob:SavepointTaken", *steps) == (EXIT_CODE, ["intent=SavepointTaken"])
    assert run("streamjob:SavepointTaken:2", *steps) == (EXIT_CODE, steps[:3])
    # A write that records no transition ends the count: its side effects are not the transition's.
    assert run("streamjob:SavepointTaken:3", *steps)[0] == 0


def test_a_running_process_is_armed_through_its_file(tmp_path: Path) -> None:
    armed = tmp_path / "armed"
    assert run("", "at=p", file=armed)[0] == 0  # no file yet: nothing armed
    armed.write_text("p@ns")
    assert run("", "at=q", "at=p", file=armed) == (EXIT_CODE, ["at=q", "at=p"])
