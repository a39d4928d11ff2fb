"""spec.source.kafka: where a Kafka cluster is and how the operator's own clients connect to it (TLS,
SASL or client-certificate authentication, in the shapes of Strimzi's ClientTls and KafkaClientAuthentication,
credentials read from Secrets)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kappa.api.base import KappaModel, ObjectName, cel, exactly_one, validated

SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class PasswordSecretSource(KappaModel):
    """A password in a Secret of the job's namespace (Strimzi's PasswordSecretSource)."""

    secret_name: ObjectName = Field(description="The Secret, in the StreamJob's namespace.")
    password: SecretKey = Field(description="The key in the Secret under which the password is stored.")


class CertAndKeySecretSource(KappaModel):
    """A client certificate and its private key in a Secret (Strimzi's CertAndKeySecretSource)."""

    secret_name: ObjectName = Field(description="The Secret, in the StreamJob's namespace.")
    certificate: SecretKey = Field(description="The key in the Secret holding the PEM certificate, user.crt.")
    key: SecretKey = Field(description="The key in the Secret holding the PEM private key, e.g. user.key.")


class CertSecretSource(KappaModel):
    """A CA certificate in a Secret (Strimzi's CertSecretSource)."""

    secret_name: ObjectName = Field(description="The Secret, in the StreamJob's namespace.")
    certificate: SecretKey = Field(description="The key in the Secret holding the PEM certificate (ca.crt).")


class KafkaClientAuthentication(KappaModel):
    """How the operator authenticates to Kafka, in the shapes of Strimzi's
    KafkaClientAuthenticationScramSha512, KafkaClientAuthenticationPlain and KafkaClientAuthenticationTls."""

    model_config = validated(
        cel(
            "self.type != 'scram-sha-512' || (has(self.username) && has(self.passwordSecret))",
            "username and passwordSecret are required for type scram-sha-512",
            reason="FieldValueRequired",
        ),
        cel(
            "self.type != 'plain' || (has(self.username) && has(self.passwordSecret))",
            "username and passwordSecret are required for type plain",
            reason="FieldValueRequired",
        ),
        cel(
            "self.type != 'tls' || has(self.certificateAndKey)",
            "certificateAndKey is required for type tls",
            reason="FieldValueRequired",
        ),
        cel(
            "self.type == 'tls' || !has(self.certificateAndKey)",
            "certificateAndKey is only for type tls",
        ),
        cel(
            "self.type != 'tls' || (!has(self.username) && !has(self.passwordSecret))",
            "username and passwordSecret are not for type tls (the certificate names the user)",
        ),
    )

    type: Literal["scram-sha-512", "plain", "tls"] = Field(
        description="scram-sha-512 (SASL SCRAM-SHA-512), plain (SASL PLAIN) or tls (a client certificate; "
        "needs tls on the connection)."
    )
    username: str | None = Field(
        default=None, min_length=1, max_length=256, description="The SASL user, for scram-sha-512 and plain."
    )
    password_secret: PasswordSecretSource | None = Field(
        default=None,
        description="Where the SASL password is, for scram-sha-512 and plain. Read when the operator "
        "connects; never copied into status, events, logs or metrics.",
    )
    certificate_and_key: CertAndKeySecretSource | None = Field(
        default=None, description="The client certificate and key, for tls."
    )


class ClientTls(KappaModel):
    """TLS to the brokers (Strimzi's ClientTls)."""

    trusted_certificates: list[CertSecretSource] = Field(
        default_factory=list,
        max_length=16,
        description="CA certificates the brokers' certificates are checked against; empty: the system's CAs.",
    )


class KafkaCluster(KappaModel):
    """Where the Kafka cluster is (a Strimzi `Kafka` by name, or bootstrap servers), and how the operator's
    own clients (admin, lag, seeding, quotas) connect to it. The Flink job's own connection is not set here:
    pass it through spec.flink."""

    model_config = validated(
        cel(
            exactly_one(["clusterRef", "bootstrapServers"]),
            "exactly one of clusterRef or bootstrapServers must be set",
        ),
        cel("!has(self.listener) || has(self.clusterRef)", "listener needs clusterRef"),
        cel("!has(self.kafkaUser) || has(self.clusterRef)", "kafkaUser needs clusterRef"),
        cel(
            "!has(self.kafkaUser) || !has(self.authentication)",
            "at most one of kafkaUser or authentication may be set",
        ),
        cel(
            "!has(self.authentication) || self.authentication.type != 'tls' || has(self.tls) "
            "|| has(self.clusterRef)",
            "authentication type tls needs tls",
        ),
    )

    cluster_ref: ObjectName | None = Field(
        default=None,
        description="Name of a Strimzi `Kafka` resource; topics get its strimzi.io/cluster label.",
    )
    bootstrap_servers: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^[^,\s]+(,[^,\s]+)*$",
        description="Comma-separated host:port list, for Kafka not managed by Strimzi.",
    )
    namespace: ObjectName | None = Field(
        default=None, description="Namespace of the Strimzi Kafka cluster; defaults to the job's namespace."
    )
    listener: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]{1,11}$",
        description="With clusterRef: the Strimzi listener to connect through, by its name in the Kafka's "
        "spec.kafka.listeners (and status.listeners). Default: the first in status.listeners. A listener "
        "with tls: true is reached over TLS, trusting the Secret {cluster}-cluster-ca-cert (key ca.crt).",
    )
    kafka_user: ObjectName | None = Field(
        default=None,
        description="With clusterRef: a Strimzi `KafkaUser` in the Kafka's namespace whose Secret "
        "(status.secret) holds the credentials: key password for scram-sha-512, user.crt and user.key for "
        "tls.",
    )
    authentication: KafkaClientAuthentication | None = Field(
        default=None, description="SASL or TLS client authentication, with credentials from Secrets."
    )
    tls: ClientTls | None = Field(
        default=None,
        description="Connect over TLS; with clusterRef, also implied by the listener's tls: true.",
    )
