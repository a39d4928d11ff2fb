"""How to reach a Kafka cluster: `KafkaConnection` (bootstrap servers and librdkafka's TLS and SASL
settings, secrets masked in its repr), the client settings every client of the operator gets
(`quiet_client_config`), the kafka-python admin client (`pure_admin_client`), and the check that the cluster
accepts a connection's credentials (`authentication_failure_blocking`)."""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from kafka.admin import KafkaAdminClient  # type: ignore[import-untyped]
from kafka.net.compat import KafkaNetClient  # type: ignore[import-untyped]

SECRET_SETTINGS = frozenset({"sasl.password", "ssl.key.pem"})
"""librdkafka settings whose values are secret: masked in every repr."""

_KAFKA_PYTHON_NAMES = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
}


@dataclass(frozen=True)
class KafkaConnection:
    """How to reach one Kafka cluster: its bootstrap servers and librdkafka's security settings
    (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.pem`,
    `ssl.certificate.pem`, `ssl.key.pem`). Hashable: clients, health and lag monitors are kept per connection,
    so that two jobs on one cluster with different credentials do not share a client.

    The repr shows the bootstrap servers, the protocol and the user, never a password or a key."""

    bootstrap: str
    config: tuple[tuple[str, str], ...] = ()
    credentials: str = ""
    """Where the credentials come from, for messages, e.g. "password from Secret ns/name key password"."""

    @classmethod
    def of(cls, connection: KafkaConnection | str) -> KafkaConnection:
        return connection if isinstance(connection, KafkaConnection) else cls(connection)

    @property
    def settings(self) -> dict[str, str]:
        return dict(self.config)

    @property
    def protocol(self) -> str:
        return self.settings.get("security.protocol", "PLAINTEXT")

    @property
    def username(self) -> str:
        return self.settings.get("sasl.username", "")

    @property
    def secured(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={'***' if k in SECRET_SETTINGS else f'<{len(v)} chars>' if k.endswith('.pem') else v}"
            for k, v in self.config
        )
        return f"KafkaConnection({self.bootstrap}{', ' if shown else ''}{shown})"

    __str__ = __repr__

    def librdkafka(self) -> dict[str, str]:
        """bootstrap.servers and the security settings, for a confluent-kafka client."""
        return {"bootstrap.servers": self.bootstrap, **self.settings}

    def kafka_python(self) -> dict[str, Any]:
        """The same settings for a kafka-python client. TLS goes through an SSLContext built from the PEMs in
        memory (no key is ever written to disk; the client certificate goes through an anonymous memfd)."""
        settings = self.settings
        out: dict[str, Any] = {"bootstrap_servers": self.bootstrap}
        out.update({_KAFKA_PYTHON_NAMES[k]: v for k, v in settings.items() if k in _KAFKA_PYTHON_NAMES})
        if "SSL" in self.protocol:
            context = ssl.create_default_context(cadata=settings.get("ssl.ca.pem") or None)
            if "ssl.certificate.pem" in settings and "ssl.key.pem" in settings:
                _load_cert_chain(context, settings["ssl.certificate.pem"], settings["ssl.key.pem"])
            out["ssl_context"] = context
        return out


def _load_cert_chain(context: ssl.SSLContext, certificate: str, key: str) -> None:
    """ssl loads a certificate chain from files only: an anonymous in-memory file (memfd, Linux) holds the
    PEMs for the moment of the call, so nothing lands on a (possibly read-only) filesystem."""
    fd = os.memfd_create("kappa-kafka-client", 0)
    try:
        os.write(fd, f"{certificate.strip()}\n{key.strip()}\n".encode())
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _refused(error: KafkaError) -> bool:
    """A SASL login or TLS handshake the cluster refused. A client certificate the broker does not accept
    arrives after the handshake, as a transport error carrying OpenSSL's alert ("ssl/tls alert bad
    certificate")."""
    code = error.code()
    return code in (KafkaError._AUTHENTICATION, KafkaError._SSL) or (
        code == KafkaError._TRANSPORT and "SSL routines" in error.str()
    )


def authentication_failure_blocking(connection: KafkaConnection, timeout: float = 5.0) -> str | None:
    """librdkafka's words when the cluster refuses the connection's credentials or TLS handshake; None when it
    accepts them, or does not answer in `timeout` (an outage, which the clients report as one). Blocks.

    A refused SASL login or TLS handshake does not fail a request: librdkafka retries the connection until the
    request times out, which reads as "Kafka unreachable" after 30 s. It does tell its error callback at once,
    served from poll() in this thread, on a short-lived client of its own."""
    errors: list[KafkaError] = []
    producer = Producer(
        {
            **connection.librdkafka(),
            **quiet_client_config(connection.bootstrap),
            "client.id": "kappa-operator-auth-check",
            "error_cb": errors.append,
        }
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            refused = [e for e in errors if _refused(e)]
            if refused:
                return refused[0].str()
            try:
                producer.list_topics(timeout=0.3)
                return None
            except KafkaException:
                pass
            producer.poll(0.1)
        return None
    finally:
        producer.flush(0)


def quiet_client_config(bootstrap_servers: str) -> dict[str, Any]:
    """Configuration every confluent-kafka client of the operator gets: librdkafka's own log only from
    CRITICAL up (KAPPA_LIBRDKAFKA_LOG_LEVEL, syslog levels, 7 for debugging). Its connection failures (ten
    `FAIL` lines a second per client while a broker is down) are the adapters' to report, once per outage,
    through the cluster's Reachability. No Python callback (`logger`, `error_cb`) is handed to librdkafka:
    those run from its threads and need a poll loop beside every client, and a client destroyed while one is
    served is how librdkafka crashes the process."""
    return {"log_level": int(os.environ.get("KAPPA_LIBRDKAFKA_LOG_LEVEL", "2"))}


def pure_admin_client(connection: KafkaConnection | str, *, client_id: str, timeout: float) -> Any:
    """A kafka-python admin client: pure Python, so a broker's answer can raise in it but not crash the
    process. Its constructor connects and blocks until the cluster answers. kafka-python leaves the IO thread
    of a constructor that could not connect running, one thread more per attempt while Kafka is down: here a
    failed constructor's network client is closed before the error is raised."""
    made: list[Any] = []

    def network_client(**config: Any) -> Any:
        made.append(KafkaNetClient(**config))
        return made[-1]

    try:
        return KafkaAdminClient(
            **KafkaConnection.of(connection).kafka_python(),
            client_id=client_id,
            request_timeout_ms=int(timeout * 1000),
            bootstrap_timeout_ms=int(timeout * 1000),
            # kafka-python fails a request beyond this many in flight on a connection (NodeNotReadyError)
            # rather than queueing it; callers in several threads share the client.
            max_in_flight_requests_per_connection=64,
            kafka_client=network_client,
        )
    except BaseException:
        for client in made:
            client.close()
            client._manager._net.stop()  # what KafkaAdminClient.close() stops
        raise
