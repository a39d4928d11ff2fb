"""Creating a replay, each part checking the world first so that a repeat after a crash changes nothing:
the consumer group seeded at the start offsets, the output topic (a Strimzi KafkaTopic or a plain topic) or
table, the broker quota, then the replay's FlinkDeployment. Also the unthrottle once the version is live."""

from __future__ import annotations

from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.controllers.cluster import open_view
from kappa.controllers.replayrun.context import Context, Services, offsets_of
from kappa.controllers.replayrun.quota import lift_recorded_quota, set_recorded_quota
from kappa.render.flink import kafka_topic
from kappa.render.replay import output_table, output_topic, replay_deployment, replay_retention

KAFKA_TOPIC_APIS = ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]


async def create_replay(services: Services, ctx: Context, admin: KafkaAdmin) -> None:
    """Each part checks the world first, so a repeat after a crash changes nothing."""
    status = ctx.status
    start = offsets_of(status.start_offsets)
    if not await admin.committed(ctx.group):
        await admin.seed_group(ctx.group, start)
    await _output_topic(services, ctx, admin)
    table = output_table(ctx.job, ctx.run)
    if table and ctx.view_spec and ctx.view_spec.backend.type == "postgres":
        view = await open_view(services.kube, ctx.namespace, ctx.view_spec, admin)
        await view.prepare(table, like=ctx.physical(ctx.view_active))
    await set_recorded_quota(ctx.connection, status.throttle)
    runtime = await services.runtime(ctx.namespace, ctx.job_name)
    await runtime.apply(
        replay_deployment(
            namespace=ctx.namespace,
            job_name=ctx.job_name,
            job_uid=ctx.job_obj["metadata"]["uid"],
            job=ctx.job,
            run_name=ctx.name,
            run=ctx.run,
            bootstrap_servers=ctx.bootstrap,
        )
    )


async def _output_topic(services: Services, ctx: Context, admin: KafkaAdmin) -> None:
    """The replay's own output topic, under the replay's retention: Strimzi's KafkaTopic where the job names a
    Strimzi cluster and the kind is served, else created through the admin client."""
    topic = output_topic(ctx.job, ctx.run)
    if not (topic and ctx.job.output.topic):
        return
    out = ctx.job.output.topic
    config = {**out.config, "retention.ms": replay_retention(ctx.run)}
    api = await services.kube.preferred("KafkaTopic", KAFKA_TOPIC_APIS)
    if ctx.job.source.kafka.cluster_ref and api:
        await services.kube.apply(
            kafka_topic(
                namespace=ctx.job.source.kafka.namespace or ctx.namespace,
                job=ctx.job_name,
                owner_uid=ctx.job_obj["metadata"]["uid"],
                topic=topic,
                version=ctx.run.version,
                partitions=out.partitions,
                replicas=out.replicas,
                config=config,
                cluster=ctx.job.source.kafka.cluster_ref,
                api_version=api,
            )
        )
    else:
        await admin.ensure_topic(
            topic, partitions=out.partitions, replication_factor=out.replicas, config=config
        )


async def unthrottle(ctx: Context) -> None:
    """Live now: the quota goes (the StreamJob adopts the version: it watches this run)."""
    await lift_recorded_quota(ctx.connection, ctx.status.throttle)
