"""Where things live that several controllers read: how to connect to a StreamJob's Kafka (bootstrap servers
and credentials), and a MaterializedView's backend opened with its Secret."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

from kappa.adapters.configmap_alias import ConfigMapAlias
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.connection import KafkaConnection, authentication_failure_blocking
from kappa.adapters.kafka.health import cluster_health
from kappa.adapters.kube import Kube
from kappa.adapters.lazy import preload
from kappa.adapters.serving import ConfigMapView, PostgresView, ServedView
from kappa.api.kafka import KafkaClientAuthentication
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.api.strimzi import KafkaStatus, KafkaUserStatus
from kappa.render import names

STRIMZI = ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]

SCRAM_SHA_512 = "SCRAM-SHA-512"


class ViewUnavailable(Exception):
    """The view's backend cannot be reached as specified; the message names the field, never a secret."""


CONNECTION_REASONS = frozenset(
    {
        "KafkaSecretNotFound",
        "KafkaSecretKeyNotFound",
        "KafkaSecretKeyInvalid",
        "KafkaListenerNotFound",
        "KafkaUserNotReady",
        "KafkaAuthenticationFailed",
    }
)
"""The reasons of a KafkaConnectionError (docs/kafka-security.md, docs/events.md)."""


class KafkaConnectionError(Exception):
    """The Kafka connection cannot be built as specified (a Secret or key missing, a listener or KafkaUser not
    found) or its credentials are refused. `reason` and the message are for a Stalled condition: they name the
    field, the Secret and the key, never a value."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in CONNECTION_REASONS, reason
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class _Secrets:
    """Reads keys of Secrets by name, each Secret once per connection built."""

    kube: Kube
    cache: dict[tuple[str, str], dict[str, str]]

    async def value(self, namespace: str, name: str, key: str, field: str) -> str:
        if (namespace, name) not in self.cache:
            secret = await self.kube.get("v1", "Secret", namespace, name)
            if secret is None:
                raise KafkaConnectionError(
                    "KafkaSecretNotFound", f"{field}: Secret {namespace}/{name} not found"
                )
            self.cache[namespace, name] = dict(secret.get("data") or {})
        encoded = self.cache[namespace, name].get(key)
        if not encoded:
            raise KafkaConnectionError(
                "KafkaSecretKeyNotFound", f"{field}: Secret {namespace}/{name} has no key {key}"
            )
        try:
            return base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise KafkaConnectionError(
                "KafkaSecretKeyInvalid", f"{field}: key {key} of Secret {namespace}/{name} is not UTF-8 text"
            ) from None


async def kafka_connection(kube: Kube, job: StreamJobSpec, namespace: str) -> KafkaConnection | None:
    """How the operator's clients connect to the job's Kafka: the bootstrap servers (as given, or those the
    Strimzi Kafka reports for the listener) and the security settings with their credentials, read from the
    Secrets the spec names. None while the bootstrap servers are unknown (a Strimzi Kafka not ready yet);
    KafkaConnectionError when the spec names what does not exist, or the cluster refuses the credentials."""
    kafka = job.source.kafka
    secrets = _Secrets(kube, {})
    settings: dict[str, str] = {}
    credentials = ""
    tls = kafka.tls is not None
    cas: list[str] = []
    if kafka.tls is not None:
        for i, ca in enumerate(kafka.tls.trusted_certificates):
            field = f"spec.source.kafka.tls.trustedCertificates[{i}]"
            cas.append(await secrets.value(namespace, ca.secret_name, ca.certificate, field))
    if kafka.bootstrap_servers or not kafka.cluster_ref:
        bootstrap = kafka.bootstrap_servers or ""
    else:
        found = await _strimzi_listener(
            kube, secrets, kafka.cluster_ref, kafka.namespace or namespace, kafka.listener
        )
        if found is None:
            return None
        bootstrap, listener_tls, cluster_ca = found
        tls = tls or listener_tls
        if listener_tls and kafka.tls is None and cluster_ca:
            cas.append(cluster_ca)
        if kafka.kafka_user:
            credentials = await _kafka_user(
                kube, secrets, kafka.kafka_user, kafka.namespace or namespace, settings
            )
    if not bootstrap:
        return None
    if kafka.authentication is not None:
        credentials = await _authentication(secrets, kafka.authentication, namespace, settings)
        tls = tls or kafka.authentication.type == "tls"
    config = _client_config(settings, tls, cas)
    connection = KafkaConnection(bootstrap, config, credentials)
    refused = await authentication_failure(connection)
    if refused:
        raise KafkaConnectionError("KafkaAuthenticationFailed", _refusal(connection, refused))
    return connection


async def _authentication(
    secrets: _Secrets, auth: KafkaClientAuthentication, namespace: str, settings: dict[str, str]
) -> str:
    """spec.source.kafka.authentication's credentials into `settings`, read from the Secrets it names; says
    where they came from (never what they are)."""
    if auth.type in ("scram-sha-512", "plain"):
        ref = auth.password_secret
        assert ref is not None and auth.username is not None  # the CRD's CEL rules
        field = "spec.source.kafka.authentication.passwordSecret"
        settings["sasl.mechanism"] = SCRAM_SHA_512 if auth.type == "scram-sha-512" else "PLAIN"
        settings["sasl.username"] = auth.username
        settings["sasl.password"] = await secrets.value(namespace, ref.secret_name, ref.password, field)
        return f"password from Secret {namespace}/{ref.secret_name} key {ref.password}"
    pair = auth.certificate_and_key
    assert pair is not None
    field = "spec.source.kafka.authentication.certificateAndKey"
    settings["ssl.certificate.pem"] = await secrets.value(
        namespace, pair.secret_name, pair.certificate, field
    )
    settings["ssl.key.pem"] = await secrets.value(namespace, pair.secret_name, pair.key, field)
    return f"certificate from Secret {namespace}/{pair.secret_name} keys {pair.certificate}, {pair.key}"


def _client_config(settings: dict[str, str], tls: bool, cas: list[str]) -> tuple[tuple[str, str], ...]:
    """librdkafka's settings in a stable order: the security protocol that TLS and SASL make, the SASL
    settings, then the rest (certificates, and the trusted CAs in one PEM)."""
    settings = dict(settings)
    sasl = "sasl.mechanism" in settings
    protocol = {(False, False): "PLAINTEXT", (True, False): "SSL", (False, True): "SASL_PLAINTEXT"}.get(
        (tls, sasl), "SASL_SSL"
    )
    if protocol != "PLAINTEXT":
        settings["security.protocol"] = protocol
    if tls and cas:
        settings["ssl.ca.pem"] = "\n".join(c.strip() for c in cas)
    order = ["security.protocol", "sasl.mechanism", "sasl.username", "sasl.password"]
    return tuple(
        sorted(settings.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 9, kv[0]))
    )


async def _strimzi_listener(
    kube: Kube, secrets: _Secrets, cluster_ref: str, namespace: str, name: str | None
) -> tuple[str, bool, str] | None:
    """(bootstrap servers, tls, the cluster CA when tls) of the named listener (or the first) of a Strimzi
    Kafka's status.listeners; None while the Kafka or its status is not there yet."""
    api = await kube.preferred("Kafka", STRIMZI)
    if api is None:
        return None
    cluster = await kube.get(api, "Kafka", namespace, cluster_ref)
    listeners = [li for li in KafkaStatus.of(cluster).listeners if li.bootstrap_servers]
    if not listeners:
        return None
    chosen = listeners[0] if name is None else next((li for li in listeners if li.name == name), None)
    if chosen is None:
        names = ", ".join(str(li.name) for li in listeners)
        raise KafkaConnectionError(
            "KafkaListenerNotFound",
            f"spec.source.kafka.listener: Kafka {namespace}/{cluster_ref} has no listener {name} in "
            f"status.listeners (it has {names})",
        )
    specs = (((cluster or {}).get("spec") or {}).get("kafka") or {}).get("listeners") or []
    spec: dict[str, Any] = next((li for li in specs if li.get("name") == chosen.name), {})
    tls = bool(spec.get("tls"))
    ca = ""
    if tls:
        ca = await secrets.value(
            namespace, f"{cluster_ref}-cluster-ca-cert", "ca.crt", f"the cluster CA of Kafka {cluster_ref}"
        )
    return str(chosen.bootstrap_servers), tls, ca


async def _kafka_user(
    kube: Kube, secrets: _Secrets, user: str, namespace: str, settings: dict[str, str]
) -> str:
    """A Strimzi KafkaUser's credentials into `settings`, from the Secret the User Operator wrote
    (status.secret; status.username is the user's name on the cluster). Says where they came from."""
    field = "spec.source.kafka.kafkaUser"
    api = await kube.preferred("KafkaUser", STRIMZI)
    found = await kube.get(api, "KafkaUser", namespace, user) if api else None
    if found is None:
        raise KafkaConnectionError("KafkaUserNotReady", f"{field}: KafkaUser {namespace}/{user} not found")
    status = KafkaUserStatus.of(found)
    secret, username = status.secret, status.username
    if not secret or not username:
        raise KafkaConnectionError(
            "KafkaUserNotReady", f"{field}: KafkaUser {namespace}/{user} has no status.secret yet"
        )
    kind = (((found.get("spec") or {}).get("authentication")) or {}).get("type")
    if kind == "scram-sha-512":
        settings["sasl.mechanism"] = SCRAM_SHA_512
        settings["sasl.username"] = str(username)
        settings["sasl.password"] = await secrets.value(namespace, str(secret), "password", field)
        return f"password from Secret {namespace}/{secret} key password (KafkaUser {user})"
    if kind in ("tls", "tls-external"):
        settings["ssl.certificate.pem"] = await secrets.value(namespace, str(secret), "user.crt", field)
        settings["ssl.key.pem"] = await secrets.value(namespace, str(secret), "user.key", field)
        return f"certificate from Secret {namespace}/{secret} keys user.crt, user.key (KafkaUser {user})"
    raise KafkaConnectionError(
        "KafkaUserNotReady",
        f"{field}: KafkaUser {namespace}/{user} has spec.authentication.type {kind}; "
        "scram-sha-512 or tls expected",
    )


def _refusal(connection: KafkaConnection, refused: str) -> str:
    """What a condition says when the cluster refuses the credentials: who, which Secret, and librdkafka's
    words."""
    if connection.username:
        who = f"SASL authentication failed for user {connection.username}"
    else:
        who = "TLS authentication failed"
    where = f" ({connection.credentials})" if connection.credentials else ""
    return f"{who}{where} at {connection.bootstrap}: {refused}"


_AUTH_CHECKED: dict[KafkaConnection, tuple[str | None, float]] = {}
RECHECK_REFUSED = 5.0
"""Seconds before refused credentials are tried again (a Secret fixed, a user created on the cluster)."""
RECHECK_UNREACHABLE = 30.0
"""Seconds before accepted credentials are tried again while the cluster reads as unreachable (rotated on
the cluster side: the clients' requests then time out, which says nothing of the cause)."""


async def authentication_failure(connection: KafkaConnection) -> str | None:
    """librdkafka's words when the cluster refuses this connection's credentials or TLS handshake, else None.
    Checked on a short-lived client when the connection is first seen, then again only when refused (every
    RECHECK_REFUSED s) or when the cluster reads as unreachable for its clients (every RECHECK_UNREACHABLE s).
    Off the event loop; a cluster that does not answer holds the look up to 5 s at those times."""
    if not connection.secured:
        return None
    now = time.monotonic()
    known = _AUTH_CHECKED.get(connection)
    if known is not None:
        refused, at = known
        if refused and now - at < RECHECK_REFUSED:
            return refused
        unreachable = cluster_health(connection).unreachable
        if not refused and (not unreachable or now - at < RECHECK_UNREACHABLE):
            return None
    refused = await asyncio.to_thread(authentication_failure_blocking, connection)
    if len(_AUTH_CHECKED) > 1000:  # connections of specs long gone
        _AUTH_CHECKED.clear()
    _AUTH_CHECKED[connection] = (refused, time.monotonic())
    return refused


async def open_view(
    kube: Kube, namespace: str, spec: MaterializedViewSpec, kafka: KafkaAdmin | None
) -> ServedView:
    backend = spec.backend
    if backend.type == "postgres":
        pg = backend.postgres
        assert pg is not None
        uri = await kube.secret_value(namespace, pg.secret_ref.name, pg.secret_ref.key)
        if not uri:
            raise ViewUnavailable(
                f"spec.backend.postgres.secretRef: Secret {pg.secret_ref.name} has no key {pg.secret_ref.key}"
            )
        await preload("kappa.adapters.postgres")  # psycopg: only a PostgreSQL view needs it
        from kappa.adapters.postgres import PostgresAlias

        return PostgresView(PostgresAlias(uri), pg.schema_, pg.view, pg.lock_timeout, pg.retries)
    cm = backend.config_map
    assert cm is not None
    return ConfigMapView(ConfigMapAlias(), namespace, cm.name, cm.key, kafka)


def physical_name(
    job: StreamJobSpec, spec: MaterializedViewSpec, version: str, lineage: dict[str, str] | None = None
) -> str | None:
    """What the view reads for a version: the table (postgres) or topic (configMap) it writes, which after a
    savepoint upgrade is its predecessor's (the StreamJob's status.outputVersions)."""
    out = (lineage or {}).get(version, version)
    if spec.backend.type == "postgres":
        return names.output_table(job.output.table.base, out) if job.output.table else None
    return names.output_topic(job.output.topic.base, out) if job.output.topic else None


def jobs_serving(jobs: list[dict[str, Any]], view: str) -> list[dict[str, Any]]:
    return [j for j in jobs if ((j.get("spec") or {}).get("output") or {}).get("view") == view]
