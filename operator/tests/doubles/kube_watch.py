"""A list-then-watch of one custom resource across all namespaces into a local cache: the informer the doubles
use instead of a controller framework, so that each double is one plain thread plus one worker thread."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name)"""

log = logging.getLogger(__name__)

GONE = 410
"""The resourceVersion a watch resumes from was compacted away: only a fresh list can continue."""


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def api_client(kubeconfig: Path | str) -> client.ApiClient:
    """A client of its own for each thread, never the process-wide default configuration, so that a double
    talks to the API server its kubeconfig names whatever else the test process has loaded."""
    made: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    return made


def key_of(obj: Obj) -> Key:
    return obj["metadata"]["namespace"], obj["metadata"]["name"]


def replace_status(
    custom: client.CustomObjectsApi, resource: Resource, obj: Obj, status: dict[str, Any]
) -> bool:
    """Replace the whole status through the status subresource, only on this very object: a patch by name
    alone would land on a namespace/name that was deleted and created again meanwhile. False when the object
    is gone or is another one now."""
    meta = obj["metadata"]
    try:
        custom.patch_namespaced_custom_object_status(
            resource.group,
            resource.version,
            meta["namespace"],
            resource.plural,
            meta["name"],
            [
                {"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
                {"op": "add", "path": "/status", "value": status},
            ],
            _content_type="application/json-patch+json",
            _request_timeout=10,
        )
    except ApiException as e:
        if e.status == 404:
            return False
        # A failed "test" is a bare 422; a status the schema refuses is a 422 that lists its causes.
        if e.status == 422 and not (json.loads(e.body or "{}").get("details") or {}).get("causes"):
            return False
        raise
    return True


def _lines(resp: Any) -> Iterator[bytes]:
    """Watch events are newline-delimited JSON; a chunk may hold several events or part of one."""
    pending = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    # Whatever is left is part of an event cut off by a broken stream; the watch resumes before it.


class ResourceWatcher:
    """Keeps a cache equal to the API server's view of one resource, and calls `on_change` for every change.

    A list gives the starting state and a resourceVersion; a watch from that version streams the changes.
    410 Gone, an ERROR event or a broken list leads to a fresh list (diffed against the cache, so a deletion
    missed while disconnected is still reported). Reads time out every `read_timeout` seconds and `stop()`
    shuts the socket down, so the thread ends promptly instead of sitting in a blocking read for minutes.

    `on_change(type, obj)` runs on the watch thread and must not block: the doubles use it to wake their
    worker.
    """

    def __init__(
        self,
        kubeconfig: Path | str,
        resource: Resource,
        *,
        on_change: Callable[[str, Obj], None],
        label_selector: str | None = None,
        read_timeout: float = 3.0,
        name: str = "watch",
    ) -> None:
        self.resource = resource
        self._kubeconfig = kubeconfig
        self._on_change = on_change
        self._label_selector = label_selector
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._cache: dict[Key, Obj] = {}
        self._resp: Any = None
        self._resume_from: str | None = None
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.lists = 0
        """How many times the cache was (re)filled from a list: 1 + the number of recoveries."""

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._synced.wait(timeout):
            self.stop()
            raise TimeoutError(f"{self.resource.plural}: no initial list within {timeout}s")

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self._thread.join(0)
        waited = 0.0
        while self._thread.is_alive() and waited < timeout:
            self._shutdown_stream()
            self._thread.join(0.1)
            waited += 0.1
        if self._thread.is_alive():
            log.warning("%s watch did not stop within %ss", self.resource.plural, timeout)

    def interrupt(self, resume_from: str | None = None) -> None:
        """Break the current stream, as a network failure would; with `resume_from`, the next watch starts
        from that resourceVersion (tests pass a compacted one to exercise the 410 Gone path)."""
        with self._lock:
            self._resume_from = resume_from
        self._shutdown_stream()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # --- the cache ---------------------------------------------------------------------------------------

    def get(self, key: Key) -> Obj | None:
        with self._lock:
            return self._cache.get(key)

    def snapshot(self) -> list[Obj]:
        with self._lock:
            return list(self._cache.values())

    # --- the thread --------------------------------------------------------------------------------------

    def _shutdown_stream(self) -> None:
        with self._lock:
            resp = self._resp
        if resp is None:
            return
        try:
            resp.shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
        except Exception:
            with contextlib.suppress(Exception):
                resp.connection.sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        api = client.CustomObjectsApi(api_client(self._kubeconfig))
        while not self._stopping.is_set():
            try:
                version = self._list(api)
                self._watch(api, version)
            except Exception as e:
                if self._stopping.is_set():
                    break
                log.warning("%s watch failed, listing again: %s", self.resource.plural, e)
                self._stopping.wait(0.5)

    def _list(self, api: client.CustomObjectsApi) -> str:
        r = self.resource
        listed: Any = api.list_cluster_custom_object(
            r.group, r.version, r.plural, label_selector=self._label_selector, _request_timeout=30
        )
        fresh = {key_of(o): o for o in listed.get("items", [])}
        with self._lock:
            gone = [o for k, o in self._cache.items() if k not in fresh]
            changed = [
                o
                for k, o in fresh.items()
                if k not in self._cache
                or self._cache[k]["metadata"]["resourceVersion"] != o["metadata"]["resourceVersion"]
            ]
            self._cache = fresh
            self.lists += 1
        for o in gone:
            self._on_change("DELETED", o)
        for o in changed:
            self._on_change("MODIFIED", o)
        self._synced.set()
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, api: client.CustomObjectsApi, version: str) -> None:
        """Returns when only a fresh list can continue; raises on anything unexpected."""
        r = self.resource
        while not self._stopping.is_set():
            with self._lock:
                if self._resume_from is not None:
                    version, self._resume_from = self._resume_from, None
            try:
                resp: Any = api.list_cluster_custom_object(
                    r.group,
                    r.version,
                    r.plural,
                    label_selector=self._label_selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=300,
                    watch=True,
                    _preload_content=False,
                    _request_timeout=(5, self._read_timeout),
                )
            except ApiException as e:
                if e.status == GONE:
                    return
                raise
            except urllib3.exceptions.HTTPError:
                continue  # a read timeout while the server waited for its cache; try again
            if not 200 <= resp.status < 300:
                body = resp.data[:500]
                resp.release_conn()
                if resp.status == GONE:
                    return
                raise RuntimeError(f"watch {r.plural}: HTTP {resp.status}: {body!r}")
            with self._lock:
                self._resp = resp
            try:
                for line in _lines(resp):
                    event = json.loads(line)
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        # 410: compacted; 504 "Too large resource version": the server's cache is behind the
                        # version asked for (etcd 3.4 sends no progress notifications). Both heal with a list.
                        log.info("%s watch: %s", r.plural, obj.get("message"))
                        return
                    version = obj["metadata"]["resourceVersion"]
                    if kind == "BOOKMARK":
                        continue
                    with self._lock:
                        if kind == "DELETED":
                            self._cache.pop(key_of(obj), None)
                        else:
                            self._cache[key_of(obj)] = obj
                    self._on_change(kind, obj)
            except (urllib3.exceptions.HTTPError, OSError):
                pass  # read timeout, or the socket shut down by stop()/interrupt(): resume from `version`
            finally:
                with self._lock:
                    self._resp = None
                resp.release_conn()
