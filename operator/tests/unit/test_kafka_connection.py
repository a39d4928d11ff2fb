"""A KafkaConnection: the settings each client library gets, and a repr that never shows a secret."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.kafka.health import cluster_health

SCRAM = KafkaConnection(
    "kafka:9094",
    (
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", "app"),
        ("sasl.password", "s3cr3t-pw"),
        ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
    ),
    "password from Secret ns/kafka key password",
)


def test_the_repr_masks_the_password_and_shortens_pems() -> None:
    for text in (repr(SCRAM), str(SCRAM), f"{SCRAM}", repr([SCRAM]), repr(cluster_health(SCRAM).connection)):
        assert "s3cr3t-pw" not in text
        assert "MIIB" not in text
        assert "sasl.password=***" in text
        assert "kafka:9094" in text and "sasl.username=app" in text


def test_librdkafka_and_kafka_python_get_the_same_settings() -> None:
    assert SCRAM.librdkafka() == {"bootstrap.servers": "kafka:9094", **dict(SCRAM.config)}
    plain = KafkaConnection("kafka:9094", (("security.protocol", "SASL_PLAINTEXT"), *SCRAM.config[1:4]))
    assert plain.kafka_python() == {
        "bootstrap_servers": "kafka:9094",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "app",
        "sasl_plain_password": "s3cr3t-pw",
    }
    assert (plain.protocol, plain.username, plain.secured) == ("SASL_PLAINTEXT", "app", True)


def test_a_bare_bootstrap_is_plaintext_and_equal_connections_share_health() -> None:
    bare = KafkaConnection.of("kafka:9092")
    assert bare == KafkaConnection("kafka:9092") and not bare.secured
    assert bare.librdkafka() == {"bootstrap.servers": "kafka:9092"}
    assert cluster_health("kafka:9092") is cluster_health(bare)
    assert cluster_health(SCRAM) is not cluster_health(KafkaConnection("kafka:9094"))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_settings_become_an_ssl_context_with_the_client_certificate_in_memory(tmp_path: Path) -> None:
    subprocess.run(
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
            "/CN=app",
            "-days",
            "1",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(tmp_path / "crt.pem"),
        ],
        check=True,
        capture_output=True,
    )
    crt, key = (tmp_path / "crt.pem").read_text(), (tmp_path / "key.pem").read_text()
    mtls = KafkaConnection(
        "kafka:9093",
        (
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", crt),
            ("ssl.certificate.pem", crt),
            ("ssl.key.pem", key),
        ),
    )
    settings = mtls.kafka_python()
    context = settings["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "app"),),)]
    assert "BEGIN" not in repr(mtls) and "ssl.key.pem=***" in repr(mtls)
    # A key that does not match the certificate is refused when the context is built, not at the first call.
    other = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with pytest.raises(ssl.SSLError):
        KafkaConnection(
            "kafka:9093", (("security.protocol", "SSL"), ("ssl.certificate.pem", crt), ("ssl.key.pem", other))
        ).kafka_python()
