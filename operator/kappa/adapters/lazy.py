"""Libraries that only some features need are imported when a resource first needs them, not at start:
httpx for a Flink session cluster's REST API, psycopg for a MaterializedView served by PostgreSQL. Together
they are 15 MiB of the operator's memory (scale benchmark, benchmarks/README.md), and most installations use
one of them or neither.

`preload` imports in a worker thread: an import is 0.1 s of CPU on a quiet machine and seconds in the
operator's start under load, and the event loop must not wait for it. The module is then in sys.modules, so
the caller's own `from ... import` right after is a dictionary lookup."""

from __future__ import annotations

import asyncio
import importlib
import sys


async def preload(module: str) -> None:
    """Import `module` (and what it imports) off the event loop, once; Python's import lock keeps two
    concurrent first uses from importing it twice."""
    if module not in sys.modules:
        await asyncio.to_thread(importlib.import_module, module)


__all__ = ["preload"]
