"""The one Kubernetes client wrapper: server-side apply under one field manager, get, list, delete, status
patches and discovery. The official client blocks, so every call runs in a worker thread of the Kubernetes
pool (`blocking`), not Python's default pool, where Kafka waits of up to their timeout would queue it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

FIELD_MANAGER = "kappa-operator"
NOT_SERVED_TTL = 10.0
"""Seconds a kind found not served is taken as not served without asking again (a CRD installed meanwhile is
seen at most this late)."""
REQUEST_TIMEOUT = 30.0
"""Seconds any one request may take (as Kopf's own, controllers/runtime.py): an API server that accepted a
connection and never answers must not hold a worker thread, and the operator's stop, for ever."""


KUBE_WORKERS = int(os.environ.get("KAPPA_KUBE_WORKERS", "16"))
"""Threads (and kept-alive connections per client) for Kubernetes calls."""

_T = TypeVar("_T")


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(KUBE_WORKERS, thread_name_prefix="kube")


async def blocking(fn: Callable[..., _T], /, *args: Any) -> _T:
    """Run a blocking Kubernetes call in the Kubernetes pool, with the caller's context (as asyncio.to_thread
    does). Its own pool: on Python's default one (6 threads on 2 cores) Kubernetes calls queued behind Kafka
    waits of up to their timeout."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)


_injected: list[Callable[[], client.ApiClient]] = []


def use_api_client(factory: Callable[[], client.ApiClient] | None) -> None:
    """Tests only: `load_api_client` returns `factory()` instead of a client of the kubeconfig (None: the
    kubeconfig again). The controller tier (tests/fakes/) serves the clients of the event recorder and the
    ConfigMap alias from its in-memory API this way; the operator never calls it."""
    _injected[:] = [factory] if factory is not None else []


def load_api_client() -> client.ApiClient:
    """In-cluster when running in a pod, else $KUBECONFIG (or ~/.kube/config); a kept-alive connection per
    worker thread (urllib3 would otherwise keep 5 per host, and open and drop the others per call)."""
    if _injected:
        return _injected[0]()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = KUBE_WORKERS
    return client.ApiClient(configuration)


def request_json(
    api: client.ApiClient,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    query: list[tuple[str, str]] | None = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """One core/v1 request through `api` (its auth, TLS and connection pool), JSON in and out; an answer that
    is not 2xx raises the ApiException (NotFoundException, ConflictException, ...) that CoreV1Api would.

    The event recorder and the ConfigMap alias use this instead of CoreV1Api: that module's methods are
    pydantic-validated and importing it costs 20 MiB of RSS, a fifth of the operator at start, for three
    calls. The path is built as DynamicClient.request builds its own, without its discovery."""
    request = api.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
    response.read()
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    answer: dict[str, Any] = json.loads(response.data or b"{}")
    return answer


class NotServed(Exception):
    """The cluster does not serve this API (the CRD is not installed)."""


class NamespaceTerminating(Exception):
    """The namespace is being deleted: the API server refuses anything new in it (403). Not an ApiException,
    so that no controller reads it as a refused child: the handlers stop quietly (controllers/status.py)."""

    def __init__(self, namespace: str) -> None:
        super().__init__(f"namespace {namespace} is being deleted")
        self.namespace = namespace


@contextlib.contextmanager
def _writing(namespace: str | None) -> Iterator[None]:
    """Turn the API server's "being terminated" refusal of a write into NamespaceTerminating."""
    try:
        yield
    except ApiException as exc:
        if exc.status == 403 and "being terminated" in str(exc.body or ""):
            raise NamespaceTerminating(namespace or "?") from exc
        raise


class Kube:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        api = api_client or load_api_client()
        api.user_agent = FIELD_MANAGER  # managedFields name us, also for merge patches
        self._dynamic = DynamicClient(api)
        # The client keeps its discovery in a file shared by every process that talks to the same host
        # (/tmp/osrcp-<md5 of the URL>.json) and trusts it on start: a kind removed while we were down still
        # read as served. Start from what the cluster serves now; the lazy discoverer fills in on use.
        self._dynamic.resources.invalidate_cache()
        self._not_served: dict[tuple[str, str], float] = {}  # (api_version, kind) -> look again after
        self._discovery = threading.Lock()

    def _resource(self, api_version: str, kind: str) -> Any:
        # One thread at a time: the client's discovery cache is not thread-safe. A miss empties it, and a
        # lookup in another thread meanwhile raised KeyError('resources') (46 of 50 concurrent looks for a
        # kind that is not served). Hits are dictionary lookups: the lock is held long only on a miss.
        with self._discovery:
            try:
                return self._dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                pass
            # The discovery cache predates a CRD installed since: look again once.
            self._dynamic.resources.invalidate_cache()
            try:
                return self._dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError as exc:
                raise NotServed(f"{kind} ({api_version}) is not served by this cluster") from exc

    # -- blocking bodies ------------------------------------------------------------------------------

    def _apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        result = self._dynamic.server_side_apply(
            resource,
            body=obj,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            _request_timeout=REQUEST_TIMEOUT,
        )
        return dict(result.to_dict())

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace")
        created = resource.create(
            body=obj, namespace=namespace, field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT
        )
        return dict(created.to_dict())

    def _replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(obj["apiVersion"], obj["kind"])
        namespace = obj["metadata"].get("namespace")
        replaced = resource.replace(
            body=obj, namespace=namespace, field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT
        )
        return dict(replaced.to_dict())

    def _get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self._resource(api_version, kind).get(
                name=name, namespace=namespace, _request_timeout=REQUEST_TIMEOUT
            )
            return dict(found.to_dict())
        except NotFoundError:
            return None

    def _list(
        self, api_version: str, kind: str, namespace: str | None, selector: str
    ) -> list[dict[str, Any]]:
        found = self._resource(api_version, kind).get(
            namespace=namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
        )
        return [dict(item.to_dict()) for item in found.items]

    def _delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        try:
            self._resource(api_version, kind).delete(
                name=name,
                namespace=namespace,
                body={"propagationPolicy": "Background"},
                _request_timeout=REQUEST_TIMEOUT,
            )
        except NotFoundError:
            return False
        return True

    def _patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        resource = self._resource(api_version, kind).subresources["status"]
        patched = resource.patch(
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            _request_timeout=REQUEST_TIMEOUT,
        )
        return dict(patched.to_dict())

    def _annotate(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        annotations: dict[str, str],
        manager: str,
    ) -> None:
        self._resource(api_version, kind).patch(
            body={"metadata": {"annotations": annotations}},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
            field_manager=manager,
            _request_timeout=REQUEST_TIMEOUT,
        )

    def _secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = self._get("v1", "Secret", namespace, name)
        encoded = ((secret or {}).get("data") or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded else None

    def _served(self, api_version: str, kind: str) -> bool:
        # A miss costs two rediscoveries of every API group (the client's and _resource's). Asked at each
        # look of each resource, a kind that is not served (Strimzi's Kafka on a cluster without it) kept the
        # worker threads busy rediscovering: remember the answer for NOT_SERVED_TTL seconds.
        if time.monotonic() < self._not_served.get((api_version, kind), 0.0):
            return False
        try:
            self._resource(api_version, kind)
        except NotServed:
            self._not_served[(api_version, kind)] = time.monotonic() + NOT_SERVED_TTL
            return False
        return True

    # -- async API ------------------------------------------------------------------------------------

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply under the operator's field manager; idempotent."""
        with _writing(obj["metadata"].get("namespace")):
            return await blocking(self._apply, obj)

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create; ApiException 409 when it exists."""
        with _writing(obj["metadata"].get("namespace")):
            return await blocking(self._create, obj)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace as a compare-and-swap: with metadata.resourceVersion set, a concurrent change is a 409."""
        with _writing(obj["metadata"].get("namespace")):
            return await blocking(self._replace, obj)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return await blocking(self._get, api_version, kind, namespace, name)

    async def select(
        self, api_version: str, kind: str, namespace: str | None, selector: str
    ) -> list[dict[str, Any]]:
        """Objects matching a label selector ("" for all); namespace None lists every namespace."""
        return await blocking(self._list, api_version, kind, namespace, selector)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete; False when it was already gone."""
        return await blocking(self._delete, api_version, kind, namespace, name)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of the status subresource; the object as the API server returned it."""
        with _writing(namespace):
            return await blocking(self._patch_status, api_version, kind, namespace, name, status)

    async def annotate(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        annotations: dict[str, str],
        *,
        manager: str = "kubectl-kappa",
    ) -> None:
        """For the CLI, acting as its user: the operator itself never writes annotations."""
        await blocking(self._annotate, api_version, kind, namespace, name, annotations, manager)

    async def served(self, api_version: str, kind: str) -> bool:
        """Whether the cluster serves the kind, from the discovery cache (rediscovered when it misses)."""
        return await blocking(self._served, api_version, kind)

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        """One key of a Secret, decoded; None when the Secret or key is missing. Never log the value."""
        return await blocking(self._secret_value, namespace, name, key)

    async def preferred(self, kind: str, api_versions: list[str]) -> str | None:
        """The first of `api_versions` the cluster serves for `kind` (e.g. Strimzi v1, then v1beta2)."""
        for api_version in api_versions:
            if await blocking(self._served, api_version, kind):
                return api_version
        return None


__all__ = [
    "FIELD_MANAGER",
    "ApiException",
    "Kube",
    "NamespaceTerminating",
    "NotServed",
    "blocking",
    "load_api_client",
    "use_api_client",
]
