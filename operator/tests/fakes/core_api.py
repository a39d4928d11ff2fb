"""`fake_api_client`: a real `kubernetes.client.ApiClient` whose HTTP layer is served from a `FakeKube` store,
for the adapters that use the official client directly rather than `Kube`: adapters/events.py's
`EventRecorder` (core/v1 Events, created and then counted with a patch) and adapters/configmap_alias.py's
`ConfigMapAlias` (read, create, and replace carrying the resourceVersion read: the compare-and-swap of a
view switch). Their own code runs unchanged: only the REST client under `ApiClient` is replaced, so requests
are built and answers parsed (into V1ConfigMap, CoreV1Event, ApiException) by the client library itself.

Served: `/api/v1/namespaces/{namespace}/{configmaps,events,secrets}[/{name}]` with GET, POST (create; 409 if
it exists; `generateName`), PUT (replace; 409 on a stale resourceVersion), PATCH (a merge patch) and DELETE.
Anything else answers 404, as an unknown path would.

The operator gets these clients through `kappa.adapters.kube.use_api_client` (the one injection point the
controller tier needs in product code): `load_api_client()` then returns `fake_api_client(...)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from kubernetes import client
from kubernetes.client import rest

from tests.fakes.kube import Store, api_error, merge_patch

HOST = "http://kube.fake"
KINDS = {"configmaps": "ConfigMap", "events": "Event", "secrets": "Secret"}


@dataclass
class _Answer:
    """What urllib3 would hand rest.RESTResponse."""

    status: int
    data: bytes
    reason: str = "OK"
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


class _Route:
    """A store that can be swapped: one client serves the store of the test that runs now (the operator
    keeps its event recorder for the life of the process, controllers/status.py)."""

    def __init__(self) -> None:
        self.store: Store | None = None


ROUTE = _Route()


class FakeRest:
    """The REST client under ApiClient (kubernetes.client.rest.RESTClientObject's `request`)."""

    def __init__(self, route: _Route) -> None:
        self.route = route

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,
        _request_timeout: Any = None,
    ) -> rest.RESTResponse:
        store = self.route.store
        try:
            if store is None:
                raise api_error(503, "Service Unavailable", "no fake API server is running")
            status, answer = _serve(store, method, urlsplit(url).path, body)
            return rest.RESTResponse(_Answer(status, json.dumps(answer).encode()))
        except client.ApiException as exc:
            body_text = exc.body if isinstance(exc.body, str) else "{}"
            return rest.RESTResponse(_Answer(int(exc.status), body_text.encode(), str(exc.reason)))


def _serve(store: Store, method: str, path: str, body: Any) -> tuple[int, Any]:
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) not in (5, 6) or parts[:3] != ["api", "v1", "namespaces"] or parts[4] not in KINDS:
        raise api_error(404, "Not Found", f"the server could not find the requested resource ({path})")
    namespace, kind = parts[3], KINDS[parts[4]]
    name = parts[5] if len(parts) == 6 else None
    if name is None:
        if method == "GET":
            return 200, {
                "kind": f"{kind}List",
                "apiVersion": "v1",
                "items": store.list("v1", kind, namespace),
            }
        if method == "POST":
            obj = {**dict(body or {}), "apiVersion": "v1", "kind": kind}
            obj["metadata"] = {**(obj.get("metadata") or {}), "namespace": namespace}
            return 201, store.create(obj)
        raise api_error(405, "Method Not Allowed", method)
    key = ("v1", kind, namespace, name)
    if method == "GET":
        found = store.get(key)
        if found is None:
            raise api_error(404, "Not Found", f'{parts[4]} "{name}" not found')
        return 200, found
    if method == "PUT":
        return 200, store.update(key, lambda current: _replaced(current, dict(body or {}), kind), "replace")
    if method == "PATCH":
        return 200, store.update(key, lambda current: merge_patch(current, dict(body or {})), "patch")
    if method == "DELETE":
        if not store.delete(key):
            raise api_error(404, "Not Found", f'{parts[4]} "{name}" not found')
        return 200, {"kind": "Status", "status": "Success"}
    raise api_error(405, "Method Not Allowed", method)


def _replaced(current: dict[str, Any], body: dict[str, Any], kind: str) -> dict[str, Any]:
    expected = (body.get("metadata") or {}).get("resourceVersion")
    if expected and expected != current["metadata"]["resourceVersion"]:
        raise api_error(
            409,
            "Conflict",
            f'Operation cannot be fulfilled: the object "{current["metadata"]["name"]}" has been modified',
        )
    new = {**body, "apiVersion": "v1", "kind": kind}
    new["metadata"] = {**(body.get("metadata") or {})}
    for kept in ("uid", "creationTimestamp", "namespace", "name"):
        new["metadata"][kept] = current["metadata"][kept]
    return new


def fake_api_client() -> client.ApiClient:
    """An ApiClient over `ROUTE`'s store (set it to a test's store first)."""
    api = client.ApiClient(client.Configuration(host=HOST))
    api.rest_client = FakeRest(ROUTE)
    return api
