"""What the benchmarks share: the test-bed services brought up by their scripts (only those started here are
stopped by `down`), a free port, and a time-stamped line of output."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTBED = ROOT / "testbed"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """The test-bed services, brought up by their scripts; the ones started here are stopped by `down`."""

    started: list[str] = field(default_factory=list)

    def up(self, script: str, what: str, timeout: float = 1800) -> str:
        path = str(TESTBED / script)
        was_up = subprocess.run(["bash", path, "status"], capture_output=True).returncode == 0
        if not was_up:
            self.started.append(script)
        say(f"{what}: {'running already' if was_up else 'starting'}")
        done = subprocess.run(["bash", path, "up"], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise SystemExit(f"{what} did not start:\n{done.stderr[-3000:]}")
        return done.stdout.strip().splitlines()[-1]

    def down(self) -> None:
        for script in reversed(self.started):
            say(f"stopping {script} (started by this benchmark)")
            subprocess.run(["bash", str(TESTBED / script), "down"], capture_output=True, timeout=300)
        self.started.clear()
