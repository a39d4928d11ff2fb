"""When each object is looked at next: at once when a watch event concerns it (its own change, a child's, a
run's, its lag), otherwise when its last look asked (`requeue_after`): soon while something moves, rarely at
rest. It replaces a fixed timer per object, which looked at every object every interval whether anything
had changed or not (issue 14: four API calls per StreamJob per 10 s, growing with N²).

One loop per kind carries the looks out, a bounded number at a time and never two of one object at once;
due objects are taken soonest-due first. Written by hand: Kopf has watch streams, indexes and per-object
timers and daemons, but no delay queue that a watch event can bring forward (a Kopf timer sleeps its fixed
interval and wakes only when stopped), and a Kopf daemon on a kind with deletion handlers makes Kopf run
those handlers twice (it forgets their outcome while the daemon stops; kopf/_core/reactor/processing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Look = Callable[[Hashable], Awaitable[float]]
"""Looks at one object and says in how many seconds it wants the next look."""


class Schedule:
    """Per key (namespace, name): when its next look is due. Keys come in with their first look (`after`)
    and leave with `forget`; a wake for a key it does not know is dropped."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._due: dict[Hashable, float] = {}
        self._looked: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._order = itertools.count()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._changed = asyncio.Event()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._due

    def __len__(self) -> int:
        return len(self._due)

    @property
    def running(self) -> int:
        return len(self._running)

    def due_now(self) -> int:
        """Looks due and not begun: the queue's depth."""
        now = self._clock()
        return sum(1 for key, due in list(self._due.items()) if due <= now and key not in self._running)

    def after(self, key: Hashable, seconds: float) -> None:
        """A look just made asks for the next in `seconds`."""
        now = self._clock()
        self._looked[key] = now
        self._set(key, now + seconds, force=True)

    def wake(self, key: Hashable) -> None:
        """Something about the object changed: look at it now (once, however many events came meanwhile)."""
        if key not in self._due:
            return
        if key in self._running:
            self._again.add(key)  # the look under way may have read the world before the change
        self._set(key, self._clock())

    def nudge(self, key: Hashable, spacing: float) -> None:
        """Something worth showing changed (its lag): look soon, but not more often than every `spacing`."""
        looked = self._looked.get(key)
        if looked is not None and key in self._due:
            self._set(key, max(looked + spacing, self._clock()))

    def due_in(self, key: Hashable) -> float | None:
        """Seconds until the next look (None for a key it does not know)."""
        due = self._due.get(key)
        return None if due is None else max(0.0, due - self._clock())

    def forget(self, key: Hashable) -> None:
        self._due.pop(key, None)
        self._looked.pop(key, None)
        self._again.discard(key)

    def _set(self, key: Hashable, due: float, *, force: bool = False) -> None:
        if not force and self._due.get(key, float("inf")) <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        self._changed.set()

    def _take(self) -> tuple[list[Hashable], float | None]:
        """The keys due now (not under way), soonest first; and seconds until the next one is due."""
        now = self._clock()
        due: list[Hashable] = []
        while self._heap and self._heap[0][0] <= now:
            at, _order, key = heapq.heappop(self._heap)
            if self._due.get(key) != at or key in self._running:
                continue  # replaced by a later entry, or forgotten; or under way (its end sets the next)
            due.append(key)
        while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        wait = None
        if self._heap:
            wait = max(0.0, self._heap[0][0] - now)
        return due, wait

    async def run(self, look: Look, workers: int) -> None:
        """Carry out the looks as they fall due, at most `workers` at a time, until cancelled."""
        slots = asyncio.Semaphore(workers)
        tasks: set[asyncio.Task[None]] = set()

        async def one(key: Hashable) -> None:
            try:
                following = await look(key)
            finally:
                self._running.discard(key)
                slots.release()
            if key in self._due:
                self._looked[key] = self._clock()
                again = key in self._again
                self._again.discard(key)
                self._set(key, self._clock() if again else self._clock() + following, force=True)
            self._changed.set()

        try:
            while True:
                self._changed.clear()
                due, wait = self._take()
                for key in due:
                    await slots.acquire()
                    if key not in self._due:
                        slots.release()
                        continue
                    self._running.add(key)
                    task = asyncio.create_task(one(key), name=f"kappa-look-{key}")
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if due:
                    continue  # more may have fallen due meanwhile
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=wait)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
