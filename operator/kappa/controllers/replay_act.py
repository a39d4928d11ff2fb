"""What a ReplayRun's reconcile does to the world, each part idempotent and checking first: create the replay
(group, output, quota, deployment), cut the view over, and remove, stop or decommission afterwards."""

from __future__ import annotations

from typing import Any

from kappa.adapters.kafka import KafkaAdmin, KafkaConnection
from kappa.adapters.quota import ClientQuotas
from kappa.api.base import API_VERSION
from kappa.api.materializedview import MaterializedViewSpec
from kappa.api.replayrun import ReplayRunSpec
from kappa.api.streamjob import StreamJobSpec
from kappa.controllers.cluster import open_view
from kappa.controllers.replay_context import Context, ReplayBase, offsets_of, replaced_version
from kappa.machines import replay
from kappa.render import names
from kappa.render.flink import kafka_topic, kafka_topic_name
from kappa.render.replay import output_table, output_topic, replay_deployment, replay_retention


class ReplayActions(ReplayBase):
    async def _create(self, ctx: Context, admin: KafkaAdmin) -> None:
        """Each part checks the world first, so a repeat after a crash changes nothing."""
        start = offsets_of(ctx.status.get("startOffsets"))
        if not await admin.committed(ctx.group):
            await admin.seed_group(ctx.group, start)
        topic = output_topic(ctx.job, ctx.run)
        if topic and ctx.job.output.topic:
            out = ctx.job.output.topic
            config = {**out.config, "retention.ms": replay_retention(ctx.run)}
            api = await self.kube.preferred("KafkaTopic", ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"])
            if ctx.job.source.kafka.cluster_ref and api:
                await self.kube.apply(
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
        table = output_table(ctx.job, ctx.run)
        if table and ctx.view_spec and ctx.view_spec.backend.type == "postgres":
            view = await open_view(self.kube, ctx.namespace, ctx.view_spec, admin)
            active = ((ctx.view_obj or {}).get("status") or {}).get("activeVersion")
            await view.prepare(table, like=ctx.physical(active))
        throttle = ctx.status.get("throttle")
        if throttle:
            subtasks = int(throttle.get("subtasks", 1))
            await set_quota(ctx.connection, throttle["clientId"], int(throttle["bytesPerSecond"]), subtasks)
        runtime = await self._runtime(ctx.namespace, ctx.job_name)
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

    async def _cutover(self, ctx: Context, action: replay.CutOver) -> None:
        assert ctx.view_spec is not None
        view = await open_view(self.kube, ctx.namespace, ctx.view_spec, self._admin(ctx))
        to = ctx.physical(action.to)
        assert to is not None
        done = await view.cutover(to, expected=ctx.physical(action.expected))
        cut = {**(ctx.status.get("cutover") or {})}
        if not done.already_done:
            cut["durationMs"] = done.duration_ms
        await self._write(ctx.obj, {"cutover": cut}, [], [], ctx.now)

    async def _unthrottle(self, ctx: Context) -> None:
        if ctx.status.get("throttle"):
            throttle = ctx.status["throttle"]
            await remove_quota(ctx.connection, throttle["clientId"], int(throttle.get("subtasks", 1)))

    async def _cleanup(
        self, obj: dict[str, Any], run: ReplayRunSpec, job: StreamJobSpec | None, admin: KafkaAdmin | None
    ) -> bool:
        """Remove the replay's deployment, group, quota and output: only ever before a cutover, and never
        an output the view reads. True once everything is gone."""
        meta = obj["metadata"]
        namespace, job_name = meta["namespace"], run.job_ref.name
        fd_name = names.deployment_name(job_name, run.version)
        runtime = await self._runtime(namespace, job_name)
        fd = await runtime.get(namespace, fd_name)
        if fd is not None and (fd["metadata"].get("labels") or {}).get("kappa.dev/role") == "replay":
            await runtime.delete(namespace, fd_name)
            return False  # the group has members until the job is gone
        if job is None or admin is None:
            return True
        group = names.consumer_group(namespace, job_name, run.version)
        self.lag.untrack(group)
        info = (await admin.describe_groups([group]))[group]
        if info.members:
            return False
        await admin.delete_group(group)
        status = obj.get("status") or {}
        if status.get("throttle"):
            throttle = status["throttle"]
            await remove_quota(admin.connection, throttle["clientId"], int(throttle.get("subtasks", 1)))
        topic = output_topic(job, run)
        if topic:
            api = await self.kube.preferred("KafkaTopic", ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"])
            if job.source.kafka.cluster_ref and api:
                resource = kafka_topic_name(topic)
                await self.kube.delete(api, "KafkaTopic", job.source.kafka.namespace or namespace, resource)
            else:
                await admin.delete_topic(topic)
        table = output_table(job, run)
        view_name = status.get("view")
        if table and view_name:
            view_obj = await self.kube.get(API_VERSION, "MaterializedView", namespace, view_name)
            if view_obj is not None:
                view_spec = MaterializedViewSpec.model_validate(view_obj["spec"])
                if view_spec.backend.type == "postgres":
                    view = await open_view(self.kube, namespace, view_spec, admin)
                    await view.remove(table)
        return True

    async def _stop_replay(self, obj: dict[str, Any], run: ReplayRunSpec, admin: KafkaAdmin | None) -> bool:
        namespace, job_name = obj["metadata"]["namespace"], run.job_ref.name
        fd_name = names.deployment_name(job_name, run.version)
        runtime = await self._runtime(namespace, job_name)
        fd = await runtime.get(namespace, fd_name)
        if fd is not None and (fd["metadata"].get("labels") or {}).get("kappa.dev/role") == "replay":
            await runtime.delete(namespace, fd_name)
        self.lag.untrack(names.consumer_group(namespace, job_name, run.version))
        if admin is not None and (obj.get("status") or {}).get("throttle"):
            throttle = (obj.get("status") or {})["throttle"]
            await remove_quota(admin.connection, throttle["clientId"], int(throttle.get("subtasks", 1)))
        return True

    async def _decommission(self, obj: dict[str, Any], run: ReplayRunSpec, admin: KafkaAdmin | None) -> bool:
        """After the window: the previous version's deployment and group go; its output stays, under its
        own retention (the StreamJob's deletionPolicy)."""
        meta, status = obj["metadata"], obj.get("status") or {}
        previous = replaced_version(status)
        if not previous:
            return True
        namespace, job_name = meta["namespace"], run.job_ref.name
        job_obj = await self.kube.get(API_VERSION, "StreamJob", namespace, job_name)
        if job_obj and (job_obj.get("status") or {}).get("activeVersion") == previous:
            return True  # it is live again (rolled back by other means): nothing to decommission
        fd_name = names.deployment_name(job_name, previous)
        if await (await self._runtime(namespace, job_name)).delete(namespace, fd_name):
            return False
        if admin is None:
            return True
        group = names.consumer_group(namespace, job_name, previous)
        self.lag.untrack(group)
        info = (await admin.describe_groups([group]))[group]
        if info.members:
            return False
        await admin.delete_group(group)
        return True


def _quota_entities(client_id: str, parallelism: int) -> list[str]:
    """Flink's KafkaSource names each reader `{client.id.prefix}-{subtask}`, and quotas match client ids
    exactly: the quota goes on the id itself (single-consumer jobs) and on each subtask's id, split evenly."""
    return [client_id, *(f"{client_id}-{i}" for i in range(parallelism))]


async def set_quota(connection: KafkaConnection, client_id: str, total: int, parallelism: int) -> None:
    quotas = ClientQuotas(connection)
    try:
        for entity in _quota_entities(client_id, parallelism):
            share = total if entity == client_id else max(total // parallelism, 1024)
            await quotas.set_consumer_byte_rate(entity, share)
    finally:
        quotas.close()


async def remove_quota(connection: KafkaConnection, client_id: str, parallelism: int) -> None:
    quotas = ClientQuotas(connection)
    try:
        for entity in _quota_entities(client_id, parallelism):
            await quotas.remove(entity)
    finally:
        quotas.close()
