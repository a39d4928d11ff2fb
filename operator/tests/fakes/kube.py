"""`FakeKube`: an in-memory Kubernetes API behind the public methods of adapters/kube.py's `Kube` (get,
select, apply, create, replace, delete, patch_status, annotate, served, preferred, secret_value), for the
controller tier of tests (tests/controllers/).

What it keeps as the API server does (and `Kube` relies on):
- every write gives a new `metadata.resourceVersion` (one counter for the whole store); a write that changes
  nothing (a server-side apply of the same fields) keeps it;
- custom resources (an API group with a dot) get `metadata.generation` 1 on create and one more whenever
  anything but metadata and status changes; status is a subresource: `patch_status` is a JSON merge patch
  (RFC 7386; `None` deletes a key) of `status` alone, and neither apply nor replace of the main resource
  changes status;
- `apply` is a server-side apply by one field manager with force (`Kube._apply`): the applied fields replace
  what that manager wrote before; labels and annotations are merged; a new object is created;
- `create` of an existing object and `replace` with a stale resourceVersion are 409, as is `Kube.create`
  and `Kube.replace`'s compare-and-swap; `delete` returns False when the object is already gone, and with
  `propagationPolicy: Background` the garbage collector deletes dependents (ownerReferences) too, here at
  once; an object with finalizers only gets its deletionTimestamp;
- a kind that is not served raises `NotServed` (`Kube._resource`), and `served`/`preferred` answer from the
  set of served kinds (`serve`/`unserve` change it, as installing or removing a CRD would);
- every answer is a deep copy: a caller that changes what it got changes nothing stored.

Not modelled: admission (the CRDs' OpenAPI schema and CEL rules: give the controllers only what the API server
would admit), field selectors, watches, namespaces as objects, and managedFields.

The store is shared with `FakeCoreApi` (core_api.py), which serves the adapters that use the official client
directly (events, the ConfigMap alias) from the same objects.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kappa.adapters.kube import ApiException, NotServed

Obj = dict[str, Any]
Key = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name)"""

KAPPA = "kappa.dev/v1alpha1"
FLINK = "flink.apache.org/v1beta1"
STRIMZI = "kafka.strimzi.io/v1beta2"

SERVED: frozenset[tuple[str, str]] = frozenset(
    {
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("v1", "Event"),
        ("v1", "Namespace"),
        ("coordination.k8s.io/v1", "Lease"),
        (KAPPA, "StreamJob"),
        (KAPPA, "ReplayRun"),
        (KAPPA, "MaterializedView"),
        (FLINK, "FlinkDeployment"),
        (FLINK, "FlinkSessionJob"),
        (FLINK, "FlinkStateSnapshot"),
    }
)
"""What a cluster with the CRDs and FKO serves; Strimzi's kinds are served only after `serve_strimzi`."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, `None` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def api_error(status: int, reason: str, message: str) -> ApiException:
    """What the client raises for a refusal: the status, and the API server's Status body with its message."""
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return exc


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _custom(api_version: str) -> bool:
    """A custom resource: its group has a dot (kappa.dev, flink.apache.org, kafka.strimzi.io)."""
    return "/" in api_version and "." in api_version.split("/", maxsplit=1)[0]


def _body(obj: Obj) -> Obj:
    """What a change of counts as a new generation: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _matches(labels: dict[str, str], selector: str) -> bool:
    """An equality-based label selector: `k=v`, `k==v`, `k!=v`, `k` (exists), comma-separated; "" is all."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term not in labels:
            return False
    return True


class Store:
    """The objects, by (apiVersion, kind, namespace, name). Thread-safe: the adapters that use the official
    client call `FakeCoreApi` from the Kubernetes worker threads."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[Key, Obj] = {}
        self.served: set[tuple[str, str]] = set(SERVED)
        self._versions = itertools.count(1)
        self.writes: list[tuple[str, Key]] = []
        """(verb, key) of every write, in order: what a test may ask of the API traffic."""

    def check_served(self, api_version: str, kind: str) -> None:
        if (api_version, kind) not in self.served:
            raise NotServed(f"{kind} ({api_version}) is not served by this cluster")

    def get(self, key: Key) -> Obj | None:
        with self.lock:
            found = self.objects.get(key)
            return copy.deepcopy(found) if found is not None else None

    def list(self, api_version: str, kind: str, namespace: str | None, selector: str = "") -> list[Obj]:
        with self.lock:
            return [
                copy.deepcopy(obj)
                for (v, k, ns, _), obj in sorted(self.objects.items())
                if (v, k) == (api_version, kind)
                and (namespace is None or ns == namespace)
                and _matches(obj["metadata"].get("labels") or {}, selector)
            ]

    def _key(self, obj: Obj) -> Key:
        meta = obj["metadata"]
        return obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"]

    def create(self, obj: Obj) -> Obj:
        with self.lock:
            stored = copy.deepcopy(obj)
            meta = stored["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
            key = self._key(stored)
            if key in self.objects:
                raise api_error(409, "Conflict", f'{key[1]} "{key[3]}" already exists')
            meta.pop("resourceVersion", None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _stamp()
            if _custom(stored["apiVersion"]):
                meta["generation"] = 1
            return self._store("create", key, stored)

    def _store(self, verb: str, key: Key, obj: Obj) -> Obj:
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = obj
        self.writes.append((verb, key))
        return copy.deepcopy(obj)

    def update(self, key: Key, change: Callable[[Obj], Obj], verb: str = "update") -> Obj:
        """Change a stored object through `change` (given a copy); generation follows its body."""
        with self.lock:
            current = self.objects.get(key)
            if current is None:
                raise api_error(404, "Not Found", f'{key[1]} "{key[3]}" not found')
            changed = change(copy.deepcopy(current))
            if changed == current:
                return copy.deepcopy(current)
            if _custom(key[0]) and _body(changed) != _body(current):
                changed["metadata"]["generation"] = int(current["metadata"].get("generation", 1)) + 1
            return self._store(verb, key, changed)

    def delete(self, key: Key) -> bool:
        with self.lock:
            current = self.objects.get(key)
            if current is None:
                return False
            if current["metadata"].get("finalizers"):
                if not current["metadata"].get("deletionTimestamp"):
                    current["metadata"]["deletionTimestamp"] = _stamp()
                    self._store("delete", key, current)
                return True
            del self.objects[key]
            self.writes.append(("delete", key))
            self._collect(current["metadata"]["uid"])
            return True

    def _collect(self, owner_uid: str) -> None:
        """The garbage collector: dependents of a deleted owner go too."""
        for key, obj in list(self.objects.items()):
            owners = obj["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == owner_uid for o in owners):
                self.delete(key)


class FakeKube:
    """adapters/kube.py's `Kube`, async as it is, over an in-memory `Store` (see the module docstring)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.gets: list[Key] = []
        """Every GET, as the API server would count them."""

    # -- Kube's public methods ------------------------------------------------------------------------

    async def apply(self, obj: Obj) -> Obj:
        """Server-side apply with force under the operator's field manager (`Kube._apply`)."""
        self.store.check_served(obj["apiVersion"], obj["kind"])
        key = self.store._key(obj)
        with self.store.lock:
            if self.store.objects.get(key) is None:
                applied = copy.deepcopy(obj)
                applied.pop("status", None)  # status is a subresource: apply does not write it
                return self.store.create(applied)
            return self.store.update(key, lambda current: _applied(current, obj), "apply")

    async def create(self, obj: Obj) -> Obj:
        self.store.check_served(obj["apiVersion"], obj["kind"])
        return self.store.create(obj)

    async def replace(self, obj: Obj) -> Obj:
        """A compare-and-swap when metadata.resourceVersion is set: 409 if the object moved since."""
        self.store.check_served(obj["apiVersion"], obj["kind"])
        key = self.store._key(obj)

        def replaced(current: Obj) -> Obj:
            expected = obj["metadata"].get("resourceVersion")
            if expected and expected != current["metadata"]["resourceVersion"]:
                raise api_error(409, "Conflict", f'the object "{key[3]}" has been modified')
            new = copy.deepcopy(obj)
            for kept in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if kept in current["metadata"]:
                    new["metadata"][kept] = current["metadata"][kept]
            if "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
            return new

        return self.store.update(key, replaced, "replace")

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        self.store.check_served(api_version, kind)
        self.gets.append((api_version, kind, namespace, name))
        return self.store.get((api_version, kind, namespace, name))

    async def select(self, api_version: str, kind: str, namespace: str | None, selector: str) -> list[Obj]:
        self.store.check_served(api_version, kind)
        return self.store.list(api_version, kind, namespace, selector)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.store.check_served(api_version, kind)
        return self.store.delete((api_version, kind, namespace, name))

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]
    ) -> Obj:
        """A JSON merge patch of the status subresource; the object after it."""
        self.store.check_served(api_version, kind)
        key = (api_version, kind, namespace, name)

        def patched(current: Obj) -> Obj:
            current["status"] = merge_patch(current.get("status") or {}, status)
            return current

        return self.store.update(key, patched, "patch_status")

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
        key = (api_version, kind, namespace, name)

        def annotated(current: Obj) -> Obj:
            current["metadata"] = merge_patch(current["metadata"], {"annotations": annotations})
            return current

        self.store.update(key, annotated, "annotate")

    async def served(self, api_version: str, kind: str) -> bool:
        return (api_version, kind) in self.store.served

    async def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        secret = self.store.get(("v1", "Secret", namespace, name))
        encoded = ((secret or {}).get("data") or {}).get(key)
        return base64.b64decode(encoded).decode() if encoded else None

    async def preferred(self, kind: str, api_versions: list[str]) -> str | None:
        return next((v for v in api_versions if (v, kind) in self.store.served), None)

    # -- what the world does: users, other controllers, the test -------------------------------------

    def put(self, obj: Obj) -> Obj:
        """`kubectl apply` by a user: create, or replace everything but status (metadata merged)."""
        key = self.store._key(obj)
        with self.store.lock:
            if self.store.objects.get(key) is None:
                return self.store.create(obj)
            return self.store.update(key, lambda current: _applied(current, obj), "put")

    def edit(
        self, api_version: str, kind: str, namespace: str, name: str, change: Callable[[Obj], Any]
    ) -> Obj:
        """A user's edit: `change` mutates the object in place (status changes are ignored)."""

        def edited(current: Obj) -> Obj:
            status = current.get("status")
            change(current)
            if status is None:
                current.pop("status", None)
            else:
                current["status"] = status
            return current

        return self.store.update((api_version, kind, namespace, name), edited, "edit")

    def replace_status(self, obj: Obj, status: dict[str, Any]) -> bool:
        """Another controller's write of a whole status (FKO's StatusRecorder, Strimzi), only on this very
        object (its uid); False when it is gone or another object now."""
        meta = obj["metadata"]
        key = self.store._key(obj)
        with self.store.lock:
            current = self.store.objects.get(key)
            if current is None or current["metadata"]["uid"] != meta["uid"]:
                return False

            def written(found: Obj) -> Obj:
                found["status"] = copy.deepcopy(status)
                return found

            self.store.update(key, written, "status")
            return True

    def object(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self.store.get((api_version, kind, namespace, name))

    def objects(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[Obj]:
        return self.store.list(api_version, kind, namespace, selector)

    def events(self, obj: Obj | None = None) -> list[Obj]:
        """core/v1 Events, oldest first; only those about `obj` (its uid) if given."""
        found = self.store.list("v1", "Event", None)
        if obj is not None:
            uid = obj["metadata"]["uid"]
            found = [e for e in found if (e.get("involvedObject") or {}).get("uid") == uid]
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def serve(self, kinds: Iterable[tuple[str, str]]) -> None:
        self.store.served |= set(kinds)

    def unserve(self, kinds: Iterable[tuple[str, str]]) -> None:
        self.store.served -= set(kinds)

    def serve_strimzi(self) -> None:
        self.serve((STRIMZI, kind) for kind in ("Kafka", "KafkaTopic", "KafkaUser"))


def _applied(current: Obj, applied: Obj) -> Obj:
    """An apply's result: the applied fields replace the body; labels and annotations merge; status stays."""
    new: Obj = {"apiVersion": current["apiVersion"], "kind": current["kind"]}
    meta = copy.deepcopy(current["metadata"])
    given = applied.get("metadata") or {}
    for field in ("labels", "annotations"):
        if given.get(field):
            meta[field] = {**(meta.get(field) or {}), **given[field]}
    if "ownerReferences" in given:
        meta["ownerReferences"] = copy.deepcopy(given["ownerReferences"])
    new["metadata"] = meta
    new.update(copy.deepcopy(_body(applied)))
    if "status" in current:
        new["status"] = current["status"]
    return new
