"""The ConfigMap backend of a MaterializedView: a pointer naming the active topic, which Kafka readers follow.
Switched by a replace carrying the resourceVersion that was checked: the API server's compare-and-swap."""

from __future__ import annotations

import time
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable, Cutover
from kappa.adapters.kube import FIELD_MANAGER, blocking, load_api_client, request_json
from kappa.adapters.retry import retrying_blocking


def _conflict(exc: BaseException) -> bool:
    """The API server's compare-and-swap refused the write: the ConfigMap changed since it was read (or was
    created meanwhile). Another try reads it again."""
    return isinstance(exc, ApiException) and exc.status == 409


class ConfigMapAlias:
    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        api = api_client or load_api_client()
        api.user_agent = FIELD_MANAGER
        self._api = api

    def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return request_json(self._api, "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return None
            if _outage(exc):
                raise _unavailable(namespace, name, exc) from None
            raise
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(namespace, name, exc) from None

    def _target(self, namespace: str, name: str, key: str) -> str | None:
        cm = self._read(namespace, name)
        return None if cm is None else (cm.get("data") or {}).get(key)

    async def target(self, namespace: str, name: str, key: str) -> str | None:
        return await blocking(self._target, namespace, name, key)

    def _cutover(
        self,
        namespace: str,
        name: str,
        key: str,
        to: str,
        expected: str | None,
        owner: dict[str, Any] | None,
        retries: int,
    ) -> Cutover:
        started = time.perf_counter()
        try:
            for attempt in retrying_blocking(_conflict, tries=retries + 1):
                with attempt:
                    return self._switch(
                        namespace, name, key, to, expected, owner, started, attempt.retry_state.attempt_number
                    )
        except ApiException as exc:  # a conflict at every try, or a refusal to read the ConfigMap (403)
            raise AliasError(f"switching ConfigMap {namespace}/{name} failed: {exc.reason}") from None
        raise AssertionError("unreachable")

    def _switch(
        self,
        namespace: str,
        name: str,
        key: str,
        to: str,
        expected: str | None,
        owner: dict[str, Any] | None,
        started: float,
        attempt: int,
    ) -> Cutover:
        """One try of `cutover`: read, check, then create or replace with the resourceVersion read. A 409
        (someone wrote the ConfigMap in between) is raised as it is, for another try."""
        cm = self._read(namespace, name)
        current = None if cm is None else (cm.get("data") or {}).get(key)
        if current == to:
            return Cutover(name, current, to, _ms(started), attempt, already_done=True)
        if current != expected:
            raise AliasMoved(
                f"ConfigMap {namespace}/{name} points at {current or 'nothing'}, not "
                f"{expected or 'nothing'} as expected: someone repointed it; refusing to overwrite"
            )
        try:
            manager = [("fieldManager", FIELD_MANAGER)]
            path = f"/api/v1/namespaces/{namespace}/configmaps"
            if cm is None:
                metadata: dict[str, Any] = {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
                    **({"ownerReferences": [owner]} if owner else {}),
                }
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {key: to}}
                request_json(self._api, "POST", path, body, query=manager)
            else:
                # The resourceVersion read stays: the replace is refused (409) if the ConfigMap moved since.
                cm["data"] = {**(cm.get("data") or {}), key: to}
                request_json(self._api, "PUT", f"{path}/{name}", cm, query=manager)
            return Cutover(name, current, to, _ms(started), attempt)
        except ApiException as exc:
            if _outage(exc):
                raise _unavailable(namespace, name, exc) from None
            if _conflict(exc):
                raise
            raise AliasError(f"switching ConfigMap {namespace}/{name} failed: {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unavailable(namespace, name, exc) from None

    async def cutover(
        self,
        namespace: str,
        name: str,
        key: str,
        to: str,
        *,
        expected: str | None,
        owner: dict[str, Any] | None = None,
        retries: int = 5,
    ) -> Cutover:
        """Point `data[key]` at `to` if it still names `expected` (None: no ConfigMap yet). Idempotent."""
        return await blocking(self._cutover, namespace, name, key, to, expected, owner, retries)


def _outage(exc: ApiException) -> bool:
    """The API server is there but cannot serve now (overloaded, etcd away, restarting)."""
    return exc.status in (429, 500, 502, 503, 504)


def _unavailable(namespace: str, name: str, exc: BaseException) -> BackendUnavailable:
    reason = getattr(exc, "reason", None) or " ".join(str(exc).split())[:300] or type(exc).__name__
    return BackendUnavailable(f"the API server did not answer for ConfigMap {namespace}/{name}: {reason}")


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
