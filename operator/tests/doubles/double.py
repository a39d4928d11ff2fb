"""What both doubles share: a watch, one worker thread, the namespaces they act in, start/stop and waiting."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from tests.doubles.kube_watch import Obj, Resource, ResourceWatcher

T = TypeVar("T")

log = logging.getLogger(__name__)


def wait_until(
    predicate: Callable[[], T | None], timeout: float = 10, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `predicate` until it returns something truthy, and return that; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate!r}; last: {value!r}"
            )
        time.sleep(interval)


class Double:
    """A controller thread pair: the watcher keeps a cache, the worker acts on it.

    `namespaces=None` acts everywhere, as the real operators do by default. A set limits the double to those
    namespaces (and `add_namespace` extends it), so that two test sessions sharing one API server do not both
    drive the same objects.
    """

    resource: Resource

    def __init__(
        self,
        kubeconfig: Path | str,
        *,
        namespaces: Iterable[str] | None = None,
        label_selector: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self._namespaces: set[str] | None = None if namespaces is None else set(namespaces)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._worker = threading.Thread(target=self._work, name=f"{type(self).__name__}-worker", daemon=True)
        self.errors: list[str] = []
        """Unexpected exceptions in the worker: a bug in the double, which its tests assert stays empty."""
        self.watcher = ResourceWatcher(
            kubeconfig,
            self.resource,
            on_change=self._on_change,
            label_selector=label_selector,
            name=f"{type(self).__name__}-watch",
        )

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> Self:
        self.watcher.start(timeout)
        self._worker.start()
        return self

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._wake.set()
        self.watcher.stop(timeout)
        self._worker.join(timeout)
        if self._worker.is_alive():
            log.warning("%s worker did not stop within %ss", type(self).__name__, timeout)

    @property
    def running(self) -> bool:
        """Either thread still alive; False after stop()."""
        return self.watcher.alive or self._worker.is_alive()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- scope -------------------------------------------------------------------------------------------

    def add_namespace(self, namespace: str) -> None:
        with self._lock:
            if self._namespaces is not None:
                self._namespaces.add(namespace)
        self._rescan(namespace)
        self._wake.set()

    def manages(self, namespace: str) -> bool:
        with self._lock:
            return self._namespaces is None or namespace in self._namespaces

    # --- waiting -----------------------------------------------------------------------------------------

    def wait_until(
        self, predicate: Callable[[], T | None], timeout: float = 10, interval: float = 0.05, what: str = ""
    ) -> T:
        return wait_until(predicate, timeout, interval, what)

    # --- for subclasses ----------------------------------------------------------------------------------

    def _on_change(self, kind: str, obj: Obj) -> None:
        """Runs on the watch thread: note the change and wake the worker, nothing blocking."""
        self._wake.set()

    def _rescan(self, namespace: str) -> None:
        """A namespace came into scope: objects already cached there need a look."""

    def _work(self) -> None:
        raise NotImplementedError

    def _record_error(self, what: str, e: BaseException) -> None:
        log.exception("%s: %s", what, e)
        with self._lock:
            self.errors.append(f"{what}: {type(e).__name__}: {e}")
