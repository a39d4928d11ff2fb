"""Secured Kafka: the operator's own clients (admin, lag, seeding, quotas, record sizing) reach Kafka through
the test broker's SASL_PLAINTEXT listener with SCRAM-SHA-512, the password read from a Secret the StreamJob
names.

- A replay goes through it to its cutover (FKO and the job played by their doubles; the job itself reads
  through the PLAINTEXT listener, since the operator does not configure a Flink job's Kafka security).
- A wrong password, or a Secret without the key, stalls the StreamJob within seconds with a condition that
  names the Secret and the key, and one event; fixing the Secret clears it.
- Mutual TLS through the SSL listener, the CA and the client certificate from Secrets; a certificate the
  broker does not trust stalls the job the same way.
- A Strimzi listener and KafkaUser by name give the bootstrap servers and the credentials (SCRAM, and TLS with
  the cluster CA).
- Nothing secret leaks: after the story, the password (and its base64) is in no operator log line, no status
  of the story's objects, no Event of the namespace, and no /metrics sample.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kubernetes import config

from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kube import Kube
from kappa.adapters.quota import ClientQuotas
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import KafkaConnectionError, kafka_connection
from tests.doubles.fko import FakeFlinkOperator
from tests.doubles.pipeline import FakePipeline
from tests.integration.conftest import KAFKA
from tests.integration.shop import Shop, reasons, replayrun, streamjob, view, wait_run
from tests.integration.test_cli_kappa import kubectl_kappa
from tests.integration.testbed import (
    KafkaTestbed,
    Kubectl,
    OperatorProcess,
    conditions,
    strimzi_kafka_kind,
)


@dataclass(frozen=True)
class ScramUser:
    bootstrap: str
    """The SASL_PLAINTEXT listener."""
    name: str
    password: str

    def connection(self) -> KafkaConnection:
        settings = (
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", self.name),
            ("sasl.password", self.password),
        )
        return KafkaConnection(self.bootstrap, settings)


@pytest.fixture(scope="session")
def scram_user(kafka_bootstrap: str) -> Iterator[ScramUser]:
    """A SCRAM-SHA-512 user with a fresh random password, made through the admin API on the PLAINTEXT
    listener (testbed/kafka.sh: the broker has no authorizer, so anyone may)."""
    env = subprocess.run(["bash", str(KAFKA), "env"], capture_output=True, text=True, check=True).stdout
    sasl = next(w.split("=", 1)[1] for w in env.split() if w.startswith("KAPPA_KAFKA_SASL_BOOTSTRAP="))
    user = ScramUser(sasl, f"kappa-{uuid.uuid4().hex[:8]}", f"pw-{secrets.token_hex(12)}")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    upsert = UserScramCredentialUpsertion(user.name, info, user.password.encode())
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=10)
    yield user
    deletion = UserScramCredentialDeletion(user.name, ScramMechanism.SCRAM_SHA_512)
    for future in admin.alter_user_scram_credentials([deletion]).values():
        future.result(timeout=10)


def wait_event(kubectl: Kubectl, name: str, reason: str, timeout: float = 10) -> None:
    """Events are posted after the status write, off the look: wait for one."""
    deadline = time.monotonic() + timeout
    while reason not in reasons(kubectl, name):
        assert time.monotonic() < deadline, f"no {reason} event on {name} in {timeout}s"
        time.sleep(0.3)


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}


def secured(job: dict[str, Any], user: ScramUser, plaintext: str, key: str = "password") -> dict[str, Any]:
    """The shop's StreamJob, its operator reaching Kafka with SCRAM; the job reads through PLAINTEXT."""
    job["spec"]["source"]["kafka"] = {
        "bootstrapServers": user.bootstrap,
        "authentication": {
            "type": "scram-sha-512",
            "username": user.name,
            "passwordSecret": {"secretName": "kafka-credentials", "password": key},
        },
    }
    job["spec"]["flink"]["flinkConfiguration"]["sessionizer.bootstrap-servers"] = plaintext
    return job


@pytest.fixture
def secured_shop(
    kappa_operator: OperatorProcess,
    kubectl: Kubectl,
    kafka_bootstrap: str,
    kafka: KafkaTestbed,
    postgres_uri: str,
    fko: FakeFlinkOperator,
    pipeline: FakePipeline,
    scram_user: ScramUser,
) -> Iterator[Shop]:
    """The shop of the replay stories (tests/integration/shop.py), v1 live and serving, over SCRAM."""
    schema = f"s_{uuid.uuid4().hex[:8]}"
    topic = kafka.topic(partitions=3)
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    shop = Shop(kubectl, kafka_bootstrap, postgres_uri, topic, schema)
    shop.produce(300)
    namespace = str(kubectl.namespace)
    pipeline.logic(namespace, "v1", multiplier=2.0)
    kubectl.apply(secret("serving-db", uri=postgres_uri))
    kubectl.apply(secret("kafka-credentials", password=scram_user.password))
    kubectl.apply(secured(streamjob(shop), scram_user, kafka_bootstrap))
    kubectl.apply(view(shop))
    kubectl.wait_for(
        "mv", "sessions", lambda o: (o.get("status") or {}).get("activeVersion") == "v1", 90, "v1 serving"
    )
    yield shop
    kubectl.run("delete", "rr", "--all", "--wait=false", check=False)
    kubectl.run("delete", "sj", "--all", "--wait=false", check=False)
    deadline = time.monotonic() + 60
    while pipeline.active(namespace) and time.monotonic() < deadline:
        time.sleep(0.2)
    with psycopg.connect(postgres_uri, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_a_replay_through_a_scram_listener_cuts_over_and_leaks_no_secret(
    secured_shop: Shop,
    kubectl: Kubectl,
    kappa_operator: OperatorProcess,
    scram_user: ScramUser,
) -> None:
    shop, ns = secured_shop, str(kubectl.namespace)
    job = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: conditions(o).get("KafkaReachable", {}).get("status") == "True",
        timeout=30,
        what="the lag poll answered through SCRAM",
    )
    assert conditions(job)["KafkaReachable"]["message"] == f"Kafka at {scram_user.bootstrap} answers"
    # A throttle: the operator sizes records and sets (then removes) a broker quota through the SASL listener.
    kubectl.apply(replayrun("fix-revenue", throttle={"recordsPerSecond": 100000}))
    running = kubectl.wait_for(
        "rr", "fix-revenue", lambda o: (o.get("status") or {}).get("throttle"), 60, "a throttle set"
    )
    group = running["status"]["throttle"]["clientId"]
    assert running["status"]["consumerGroup"] == group == f"{ns}.sessionizer.v2"
    done = wait_run(kubectl, "fix-revenue", "Observing", "Succeeded", timeout=90)
    assert conditions(done)["CutOver"]["status"] == "True"
    assert (done["status"]["cutover"]["fromVersion"], done["status"]["cutover"]["toVersion"]) == ("v1", "v2")
    assert shop.view_table() == "sessions_v2"
    # The replay's group was seeded (offsets committed by the operator through SCRAM) and read by the job.
    progress = done["status"]["progress"]
    assert progress["target"] == 300 and progress["consumed"] >= 300
    quotas = ClientQuotas(scram_user.connection())
    try:
        # Removed once v2 is promoted, an action after the cutover's status write.
        deadline = time.monotonic() + 20
        while asyncio.run(quotas.consumer_byte_rate(group)) is not None:
            assert time.monotonic() < deadline, "the replay's quota is still there 20 s after the cutover"
            time.sleep(0.5)
    finally:
        quotas.close()
    assert {"Preflight", "Replaying", "CutOver"} <= set(reasons(kubectl, "fix-revenue"))

    # The secret-leak test: the password, and its base64, nowhere a user or a scraper can read.
    password = scram_user.password
    encoded = base64.b64encode(password.encode()).decode()
    objects = json.loads(
        kubectl("get", "streamjobs,replayruns,materializedviews,flinkdeployments", "-o", "json")
    )
    statuses = json.dumps([o.get("status") for o in objects["items"]])
    assert len(objects["items"]) >= 4
    events = kubectl("get", "events", "-o", "json")
    assert "Replaying" in events
    with urllib.request.urlopen(f"http://127.0.0.1:{kappa_operator.metrics_port}/metrics", timeout=5) as r:
        scrape = r.read().decode()
    assert f'namespace="{ns}"' in scrape  # the story's own samples are there
    log = kappa_operator.log()
    assert scram_user.bootstrap in log or "fix-revenue" in log
    for where, text in {"status": statuses, "events": events, "metrics": scrape, "log": log}.items():
        assert password not in text, f"the password is in the {where}"
        assert encoded not in text, f"the password's base64 is in the {where}"


def test_a_wrong_password_stalls_the_job_naming_the_secret_within_seconds_and_a_fix_clears_it(
    kappa_operator: OperatorProcess,
    kubectl: Kubectl,
    kafka_bootstrap: str,
    kafka: KafkaTestbed,
    fko: FakeFlinkOperator,
    scram_user: ScramUser,
) -> None:
    ns = str(kubectl.namespace)
    shop = Shop(kubectl, kafka_bootstrap, "", kafka.topic(partitions=1), "public")
    kubectl.apply(secret("kafka-credentials", password="not-the-password"))
    applied = time.monotonic()
    kubectl.apply(secured(streamjob(shop), scram_user, kafka_bootstrap))
    job = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: conditions(o).get("Stalled", {}).get("reason") == "KafkaAuthenticationFailed",
        timeout=20,
        what="the authentication failure",
    )
    took = time.monotonic() - applied
    message = conditions(job)["Stalled"]["message"]
    print(f"\nKafkaAuthenticationFailed after {took:.1f}s: {message}")
    assert message.startswith(
        f"SASL authentication failed for user {scram_user.name} "
        f"(password from Secret {ns}/kafka-credentials key password) at {scram_user.bootstrap}: "
    )
    assert "SCRAM-SHA-512" in message
    assert "not-the-password" not in json.dumps(job)
    wait_event(kubectl, "sessionizer", "KafkaAuthenticationFailed")
    time.sleep(3)  # looks go on every second: still one event
    assert reasons(kubectl, "sessionizer").count("KafkaAuthenticationFailed") == 1
    assert "sessionizer-v1" not in kubectl("get", "flinkdeployments", "-o", "name")
    # `kubectl kappa replay --plan` connects as the operator does, and says why it cannot.
    plan = kubectl_kappa(kubectl, "replay", "sessionizer", "--version", "v2", "--from", "earliest", "--plan")
    assert plan.returncode != 0, plan.stdout + plan.stderr
    assert "KafkaAuthenticationFailed" in plan.stderr, plan.stdout + plan.stderr
    assert f"Secret {ns}/kafka-credentials key password" in plan.stderr, plan.stderr
    assert "not-the-password" not in plan.stdout + plan.stderr

    # A key the Secret does not have: the condition names the Secret and the key.
    patch = {"spec": {"source": {"kafka": {"authentication": {"passwordSecret": {"password": "pw"}}}}}}
    kubectl("patch", "sj", "sessionizer", "--type=merge", "-p", json.dumps(patch))
    job = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: conditions(o).get("Stalled", {}).get("reason") == "KafkaSecretKeyNotFound",
        timeout=15,
        what="the missing key",
    )
    assert conditions(job)["Stalled"]["message"] == (
        f"spec.source.kafka.authentication.passwordSecret: Secret {ns}/kafka-credentials has no key pw"
    )
    wait_event(kubectl, "sessionizer", "KafkaSecretKeyNotFound")

    # The right password under that key: the job deploys, and its lag is polled through SCRAM.
    kubectl.apply(secret("kafka-credentials", pw=scram_user.password))
    kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: (
            conditions(o).get("KafkaReachable", {}).get("status") == "True"
            and conditions(o).get("Stalled", {}).get("status") != "True"
        ),
        timeout=30,
        what="the job unstalled, Kafka answering",
    )
    deadline = time.monotonic() + 15
    while "sessionizer-v1" not in kubectl("get", "flinkdeployments", "-o", "name"):
        assert time.monotonic() < deadline, "v1 not deployed 15 s after the Secret was fixed"
        time.sleep(0.3)
    # The plan reads the topics through the SCRAM listener with the Secret's password; it creates nothing.
    plan = kubectl_kappa(kubectl, "replay", "sessionizer", "--version", "v2", "--from", "earliest", "--plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert f"Kafka {scram_user.bootstrap};" in plan.stdout, plan.stdout
    assert f"{shop.topic}[0]" in plan.stdout, plan.stdout
    assert scram_user.password not in plan.stdout + plan.stderr
    assert kubectl("get", "rr", "-o", "name").strip() == ""


@pytest.fixture
def strimzi_kafka(admin: Kubectl, upstream_crds: object) -> Iterator[None]:
    with strimzi_kafka_kind(admin):
        yield


def test_a_strimzi_listener_and_kafkauser_give_the_bootstrap_and_the_credentials(
    admin: Kubectl, kubectl: Kubectl, strimzi_kafka: None, scram_user: ScramUser, kafka_bootstrap: str
) -> None:
    """clusterRef + listener + kafkaUser, read the way Strimzi writes them: the listener's bootstrap
    servers from the Kafka's status.listeners, the user from the KafkaUser's status.username and the password
    from the Secret its status.secret names (key `password`). The connection authenticates on the broker."""
    ns = str(kubectl.namespace)
    kubectl.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "Kafka",
            "metadata": {"name": "events"},
            "spec": {
                "kafka": {"listeners": [{"name": "plain", "tls": False}, {"name": "scram", "tls": False}]}
            },
        }
    )
    host, port = scram_user.bootstrap.rsplit(":", 1)
    listeners = [
        {"name": "plain", "bootstrapServers": kafka_bootstrap},
        {
            "name": "scram",
            "bootstrapServers": scram_user.bootstrap,
            "addresses": [{"host": host, "port": int(port)}],
        },
    ]
    status = json.dumps({"status": {"listeners": listeners}})
    kubectl("patch", "kafka", "events", "--subresource=status", "--type=merge", "-p", status)
    user = {"authentication": {"type": "scram-sha-512"}}
    kubectl.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {"name": "sessionizer", "labels": {"strimzi.io/cluster": "events"}},
            "spec": user,
        }
    )
    kube = Kube(config.new_client_from_config(config_file=str(admin.kubeconfig)))
    spec = StreamJobSpec.model_validate(
        {
            "version": "v1",
            "source": {
                "kafka": {"clusterRef": "events", "listener": "scram", "kafkaUser": "sessionizer"},
                "topics": ["clicks"],
            },
            "output": {"topic": {"base": "out"}},
            "flink": {"image": "img", "sql": ["SELECT 1"]},
        }
    )

    def connect(listener: str = "scram") -> KafkaConnection | None:
        kafka = spec.source.kafka.model_copy(update={"listener": listener})
        job = spec.model_copy(update={"source": spec.source.model_copy(update={"kafka": kafka})})
        return asyncio.run(kafka_connection(kube, job, ns))

    with pytest.raises(KafkaConnectionError) as refused:
        connect()
    assert refused.value.reason == "KafkaUserNotReady"
    assert (
        str(refused.value)
        == f"spec.source.kafka.kafkaUser: KafkaUser {ns}/sessionizer has no status.secret yet"
    )
    # The User Operator's answer: a Secret named after the user, with the password under `password`.
    kubectl.apply(secret("sessionizer", password=scram_user.password))
    user_status = json.dumps({"status": {"secret": "sessionizer", "username": scram_user.name}})
    kubectl("patch", "kafkauser", "sessionizer", "--subresource=status", "--type=merge", "-p", user_status)
    connection = connect()
    assert connection is not None
    assert connection.bootstrap == scram_user.bootstrap
    assert connection.settings == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": scram_user.name,
        "sasl.password": scram_user.password,
    }
    assert connection.credentials == (
        f"password from Secret {ns}/sessionizer key password (KafkaUser sessionizer)"
    )
    admin_client = KafkaAdmin(connection, timeout=10)
    try:
        assert asyncio.run(admin_client.topic_exists(f"missing-{uuid.uuid4().hex[:6]}")) is False
    finally:
        admin_client.close()
    with pytest.raises(KafkaConnectionError) as missing:
        connect("external")
    assert missing.value.reason == "KafkaListenerNotFound"
    assert str(missing.value) == (
        f"spec.source.kafka.listener: Kafka {ns}/events has no listener external in status.listeners "
        "(it has plain, scram)"
    )


@dataclass(frozen=True)
class TlsListener:
    bootstrap: str
    """The SSL listener, client certificates required."""
    ca: str
    """The test CA's certificate (PEM), which signed the broker's and the clients' certificates."""

    def client(self, name: str) -> tuple[str, str]:
        """(certificate, key) of a client signed by the test CA."""
        pem = subprocess.run(
            ["bash", str(KAFKA), "client-cert", name], capture_output=True, text=True, check=True
        ).stdout
        cut = pem.index("-----BEGIN CERTIFICATE-----")
        return pem[cut:], pem[:cut]


@pytest.fixture(scope="session")
def tls_listener(kafka_bootstrap: str) -> TlsListener:
    env = subprocess.run(["bash", str(KAFKA), "env"], capture_output=True, text=True, check=True).stdout
    found = dict(w.split("=", 1) for w in env.split() if w.startswith("KAPPA_KAFKA_"))
    return TlsListener(found["KAPPA_KAFKA_SSL_BOOTSTRAP"], Path(found["KAPPA_KAFKA_CA"]).read_text())


def test_mutual_tls_with_a_ca_and_a_client_certificate_from_secrets(
    kappa_operator: OperatorProcess,
    kubectl: Kubectl,
    kafka_bootstrap: str,
    kafka: KafkaTestbed,
    fko: FakeFlinkOperator,
    tls_listener: TlsListener,
) -> None:
    """TLS: the CA from tls.trustedCertificates, the client certificate and key from
    authentication.certificateAndKey; the lag poll (librdkafka) and a quota call (kafka-python, with an
    in-memory SSL context) go through the SSL listener. A certificate the broker does not trust stalls the job
    with KafkaAuthenticationFailed, naming the Secret."""
    ns = str(kubectl.namespace)
    certificate, key = tls_listener.client("sessionizer")
    kubectl.apply(secret("kafka-ca", **{"ca.crt": tls_listener.ca}))
    kubectl.apply(secret("sessionizer-tls", **{"user.crt": certificate, "user.key": key}))
    shop = Shop(kubectl, kafka_bootstrap, "", kafka.topic(partitions=1), "public")
    job = streamjob(shop)
    job["spec"]["source"]["kafka"] = {
        "bootstrapServers": tls_listener.bootstrap,
        "tls": {"trustedCertificates": [{"secretName": "kafka-ca", "certificate": "ca.crt"}]},
        "authentication": {
            "type": "tls",
            "certificateAndKey": {
                "secretName": "sessionizer-tls",
                "certificate": "user.crt",
                "key": "user.key",
            },
        },
    }
    kubectl.apply(job)
    kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: (
            conditions(o).get("KafkaReachable", {}).get("message")
            == f"Kafka at {tls_listener.bootstrap} answers"
        ),
        timeout=30,
        what="the lag poll answered through mutual TLS",
    )
    settings = (
        ("security.protocol", "SSL"),
        ("ssl.ca.pem", tls_listener.ca),
        ("ssl.certificate.pem", certificate),
        ("ssl.key.pem", key),
    )
    quotas = ClientQuotas(KafkaConnection(tls_listener.bootstrap, settings), timeout=10)
    try:
        assert asyncio.run(quotas.consumer_byte_rate(f"{ns}.nobody")) is None
    finally:
        quotas.close()

    # A self-signed client certificate: the broker refuses the handshake.
    stranger = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=stranger",
            "-days",
            "1",
            "-keyout",
            "/dev/stdout",
            "-out",
            "/dev/stdout",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cut = stranger.index("-----BEGIN CERTIFICATE-----")
    kubectl.apply(secret("sessionizer-tls", **{"user.crt": stranger[cut:], "user.key": stranger[:cut]}))
    refused = kubectl.wait_for(
        "sj",
        "sessionizer",
        lambda o: conditions(o).get("Stalled", {}).get("reason") == "KafkaAuthenticationFailed",
        timeout=20,
        what="the refused certificate",
    )
    message = conditions(refused)["Stalled"]["message"]
    assert message.startswith(
        f"TLS authentication failed (certificate from Secret {ns}/sessionizer-tls keys user.crt, user.key) "
        f"at {tls_listener.bootstrap}: "
    ), message
    assert "bad certificate" in message
    assert "PRIVATE KEY" not in json.dumps(refused)


def test_a_strimzi_tls_listener_trusts_the_cluster_ca_and_a_tls_kafkauser_gives_the_certificate(
    admin: Kubectl, kubectl: Kubectl, strimzi_kafka: None, tls_listener: TlsListener
) -> None:
    """A listener with tls: true is reached over TLS trusting `{cluster}-cluster-ca-cert` (key ca.crt), and a
    KafkaUser of authentication type tls gives user.crt and user.key from its Secret: the connection is
    accepted by the real SSL listener, which requires a client certificate."""
    ns = str(kubectl.namespace)
    kubectl.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "Kafka",
            "metadata": {"name": "events"},
            "spec": {
                "kafka": {"listeners": [{"name": "tls", "port": 9093, "type": "internal", "tls": True}]}
            },
        }
    )
    listeners = json.dumps(
        {"status": {"listeners": [{"name": "tls", "bootstrapServers": tls_listener.bootstrap}]}}
    )
    kubectl("patch", "kafka", "events", "--subresource=status", "--type=merge", "-p", listeners)
    kubectl.apply(secret("events-cluster-ca-cert", **{"ca.crt": tls_listener.ca}))
    certificate, key = tls_listener.client("sessionizer")
    kubectl.apply(secret("sessionizer", **{"user.crt": certificate, "user.key": key}))
    kubectl.apply(
        {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {"name": "sessionizer", "labels": {"strimzi.io/cluster": "events"}},
            "spec": {"authentication": {"type": "tls"}},
        }
    )
    user_status = json.dumps({"status": {"secret": "sessionizer", "username": "CN=sessionizer"}})
    kubectl("patch", "kafkauser", "sessionizer", "--subresource=status", "--type=merge", "-p", user_status)
    spec = StreamJobSpec.model_validate(
        {
            "version": "v1",
            "source": {
                "kafka": {"clusterRef": "events", "listener": "tls", "kafkaUser": "sessionizer"},
                "topics": ["clicks"],
            },
            "output": {"topic": {"base": "out"}},
            "flink": {"image": "img", "sql": ["SELECT 1"]},
        }
    )
    kube = Kube(config.new_client_from_config(config_file=str(admin.kubeconfig)))
    connection = asyncio.run(kafka_connection(kube, spec, ns))
    assert connection is not None
    assert connection.settings == {
        "security.protocol": "SSL",
        "ssl.ca.pem": tls_listener.ca.strip(),
        "ssl.certificate.pem": certificate,
        "ssl.key.pem": key,
    }
    assert connection.credentials == (
        f"certificate from Secret {ns}/sessionizer keys user.crt, user.key (KafkaUser sessionizer)"
    )
    client = KafkaAdmin(connection, timeout=10)
    try:
        assert asyncio.run(client.topic_exists(f"missing-{uuid.uuid4().hex[:6]}")) is False
    finally:
        client.close()
