"""A throttled replay's broker quota (spec.throttle): the plan recorded at preflight (bytes per second, from
the spec or from the measured mean record size), and setting or lifting the consumer byte-rate quota on the
replay's client ids. The replay sets it before it deploys; promotion, stop and removal lift it."""

from __future__ import annotations

from kappa.adapters.kafka.connection import KafkaConnection
from kappa.adapters.quota import ClientQuotas, average_record_bytes, bytes_quota
from kappa.api.replayrun import ThrottleStatus
from kappa.controllers.replayrun.context import Context


async def quota_plan(ctx: Context) -> ThrottleStatus:
    """status.throttle: the client id, the byte rate and how it was reached, the subtasks it is split over."""
    throttle = ctx.run.throttle
    assert throttle is not None
    if throttle.bytes_per_second:
        rate, basis = (
            throttle.bytes_per_second,
            f"spec.throttle.bytesPerSecond {throttle.bytes_per_second}",
        )
        if throttle.burst:
            rate, basis = throttle.burst, f"{basis}, burst {throttle.burst}"
    else:
        assert throttle.records_per_second is not None
        mean = await average_record_bytes(ctx.connection, list(ctx.job.source.topics))
        rate = bytes_quota(throttle.records_per_second, mean or 1024.0, throttle.burst)
        basis = (
            f"{throttle.records_per_second} records/s x {mean or 1024.0:.0f} bytes mean record size "
            f"({'measured' if mean else 'assumed'})"
        )
    return ThrottleStatus(client_id=ctx.group, bytes_per_second=rate, basis=basis, subtasks=ctx.parallelism)


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


async def set_recorded_quota(connection: KafkaConnection, throttle: ThrottleStatus | None) -> None:
    """The quota status.throttle recorded at preflight, if the run is throttled."""
    if throttle:
        await set_quota(connection, throttle.client_id, throttle.bytes_per_second, throttle.subtasks)


async def lift_recorded_quota(connection: KafkaConnection, throttle: ThrottleStatus | None) -> None:
    """Lift the quota status.throttle names, if the run is throttled."""
    if throttle:
        await remove_quota(connection, throttle.client_id, throttle.subtasks)
