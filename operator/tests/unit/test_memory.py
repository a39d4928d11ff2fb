"""After a burst, the memory the C allocator kept goes back to the system (adapters/memory.py): in a fresh
interpreter, 120 MB of objects made and mostly dropped again stay resident until `trim()` gives them back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OPERATOR = Path(__file__).resolve().parents[2]

BURST = """
from kappa.adapters.memory import trim

def rss():
    status = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) // 1024

burst = [bytes(3000) for _ in range(40_000)]  # over 512 bytes each: glibc's heap, not pymalloc's arenas
kept = burst[::16]  # what outlives the burst, spread over it: the heap cannot shrink from its top alone
del burst
before = rss()
print(before, trim(), rss())
"""


def test_a_trim_gives_back_what_a_burst_left_free() -> None:
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    done = subprocess.run([sys.executable, "-c", BURST], env=env, capture_output=True, text=True, check=True)
    before, trimmed, after = done.stdout.split()
    assert trimmed == "True"
    assert int(before) - int(after) >= 80, f"RSS {before} -> {after} MiB"
