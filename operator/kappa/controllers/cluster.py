"""Where things live that several controllers read: a StreamJob's Kafka bootstrap servers, and a
MaterializedView's backend opened with its Secret."""

from __future__ import annotations

from typing import Any

from kappa.adapters.configmap_alias import ConfigMapAlias
from kappa.adapters.kafka import KafkaAdmin
from kappa.adapters.kube import Kube
from kappa.adapters.postgres import PostgresAlias
from kappa.adapters.serving import ConfigMapView, PostgresView, ServedView
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.render import names

STRIMZI = ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]


class ViewUnavailable(Exception):
    """The view's backend cannot be reached as specified; the message names the field, never a secret."""


async def bootstrap_servers(kube: Kube, job: StreamJobSpec, namespace: str) -> str:
    """bootstrapServers as given, or those a Strimzi Kafka reports in status.listeners; "" when unknown."""
    kafka = job.source.kafka
    if kafka.bootstrap_servers or not kafka.cluster_ref:
        return kafka.bootstrap_servers or ""
    api = await kube.preferred("Kafka", STRIMZI)
    if api is None:
        return ""
    cluster = await kube.get(api, "Kafka", kafka.namespace or namespace, kafka.cluster_ref)
    listeners = ((cluster or {}).get("status") or {}).get("listeners") or []
    return next((str(li["bootstrapServers"]) for li in listeners if li.get("bootstrapServers")), "")


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
