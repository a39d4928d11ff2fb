"""The `kubectl kappa` CLI's view of the cluster: the current kubeconfig and context (or --kubeconfig,
--context, -n), and the few calls the commands make. Plain blocking calls: a command does one thing at a time.
An adapter: the CLI's commands (cli/) reach the Kubernetes client only through it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kappa.api.base import GROUP, VERSION

API_VERSION = f"{GROUP}/{VERSION}"
TIMEOUT = 30.0
"""Seconds any one request may take."""

KINDS: dict[str, tuple[str, str]] = {}
"""Every spelling kubectl accepts (kind, plural, short name), lowercase -> (Kind, plural)."""
for _kind, _plural, _short in (
    ("StreamJob", "streamjobs", "sj"),
    ("ReplayRun", "replayruns", "rr"),
    ("MaterializedView", "materializedviews", "mv"),
):
    for _spelling in (_kind.lower(), _plural, _short):
        KINDS[_spelling] = (_kind, _plural)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 1."""


def kind_of(spelling: str) -> tuple[str, str]:
    try:
        return KINDS[spelling.lower()]
    except KeyError:
        raise CliError(
            f"unknown kind {spelling!r}: one of streamjob (sj), replayrun (rr), materializedview (mv)"
        ) from None


@dataclass
class Cluster:
    """An API client for one context, and the namespace the commands act in."""

    api: Any
    namespace: str
    context: str

    def kube(self) -> Any:
        """The operator's own Kubernetes adapter (adapters/kube.py) on a client of its own for this context
        (Kube is the field manager on the client it is given), for code shared with the operator."""
        from kubernetes.client import ApiClient

        from kappa.adapters.kube import Kube

        return Kube(ApiClient(self.api.configuration))

    def _custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        _, plural = kind_of(kind)
        try:
            obj: dict[str, Any] = self._custom().get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise CliError(_api_error(exc)) from None
        return obj

    def must_get(self, kind: str, name: str) -> dict[str, Any]:
        obj = self.get(kind, name)
        if obj is None:
            raise CliError(f"{kind_of(kind)[0]} {self.namespace}/{name} not found (context {self.context})")
        return obj

    def list_all(self, kind: str) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        _, plural = kind_of(kind)
        try:
            out = self._custom().list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            raise CliError(_api_error(exc)) from None
        return list(out.get("items") or [])

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        _, plural = kind_of(obj["kind"])
        try:
            created: dict[str, Any] = self._custom().create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, obj, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            raise CliError(_api_error(exc)) from None
        return created

    def annotate(self, kind: str, name: str, annotations: dict[str, str]) -> None:
        from kubernetes.client.exceptions import ApiException

        _, plural = kind_of(kind)
        try:
            self._custom().patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                plural,
                name,
                {"metadata": {"annotations": annotations}},
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            raise CliError(_api_error(exc)) from None

    def events(self, kind: str, name: str, limit: int = 5) -> list[dict[str, Any]]:
        """The object's newest events, oldest first (as `kubectl describe` lists them)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        kind_name, _ = kind_of(kind)
        try:
            found = client.CoreV1Api(self.api).list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={name},involvedObject.kind={kind_name}",
                _request_timeout=TIMEOUT,
            )
        except ApiException:
            return []  # events are best-effort, also here
        out = [
            {
                "type": e.type or "",
                "reason": e.reason or "",
                "message": e.message or "",
                "at": _event_time(e),
                "count": e.count or 1,
                "rv": int(e.metadata.resource_version or 0),
            }
            for e in found.items
        ]
        out.sort(key=_event_time_of)
        return out[-limit:]

    def secret_value(self, name: str, key: str) -> str | None:
        import base64

        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            secret = client.CoreV1Api(self.api).read_namespaced_secret(
                name, self.namespace, _request_timeout=TIMEOUT
            )
        except ApiException:
            return None
        value = (secret.data or {}).get(key)
        return base64.b64decode(value).decode() if value else None


def _event_time_of(event: dict[str, Any]) -> tuple[datetime, int]:
    """Times are whole seconds: events of the same second in the order they were written."""
    at: datetime = event["at"]
    return at, int(event.get("rv") or 0)


def _event_time(event: Any) -> datetime:
    at = (
        event.last_timestamp or event.event_time or event.first_timestamp or event.metadata.creation_timestamp
    )
    if at is None:
        return datetime.min.replace(tzinfo=UTC)
    when: datetime = at if at.tzinfo else at.replace(tzinfo=UTC)
    return when


def _api_error(exc: Any) -> str:
    import json

    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    return str(body.get("message") or f"{exc.status} {exc.reason}")


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> Cluster:
    """The current context of $KUBECONFIG (or ~/.kube/config), or the one named; in a pod without a
    kubeconfig, the pod's service account."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    config_file = str(Path(kubeconfig).expanduser()) if kubeconfig else None
    try:
        contexts, current = config.list_kube_config_contexts(config_file=config_file)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as exc:
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not (kubeconfig or context):
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            sa_ns = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            return Cluster(client.ApiClient(), namespace or sa_ns.read_text().strip(), "in-cluster")
        raise CliError(f"no kubeconfig: {exc}") from None
    chosen = current
    if context:
        chosen = next((c for c in contexts if c["name"] == context), None)
        if chosen is None:
            names = ", ".join(c["name"] for c in contexts)
            raise CliError(f"context {context!r} not found in the kubeconfig (it has: {names})")
    try:
        api = config.new_client_from_config(config_file=config_file, context=chosen["name"])  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise CliError(f"kubeconfig context {chosen['name']}: {exc}") from None
    api.user_agent = "kubectl-kappa"
    return Cluster(api, namespace or chosen["context"].get("namespace") or "default", chosen["name"])
