"""Carrying out a ReplayRun decision's actions through one table, CARRY_OUT (action type → the concern
that does it), after the intent is written. An action that fails stops the rest; what they changed and the
failure are written once, as the pass's outcome. Also what an outage reads as (FlinkUnavailable...)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kappa.adapters import metrics
from kappa.adapters.alias import AliasError, AliasMoved, BackendUnavailable
from kappa.adapters.job_runtime.seam import RuntimeUnavailable
from kappa.adapters.kafka.admin import KafkaAdmin
from kappa.adapters.kafka.errors import KafkaClientError, kafka_outage
from kappa.adapters.kafka.values import KafkaAdapterError
from kappa.adapters.kube import ApiException, NotServed
from kappa.api.conditions import ConditionUpdate, stalled
from kappa.controllers.cluster import ViewUnavailable
from kappa.controllers.failpoints import acted
from kappa.controllers.replayrun.cleanup import decommission, remove_replay, stop_replay
from kappa.controllers.replayrun.context import Context, Services
from kappa.controllers.replayrun.cutover import cut_over
from kappa.controllers.replayrun.deploy import create_replay, unthrottle
from kappa.controllers.status import once
from kappa.machines import replay
from kappa.machines.decision import Event

Carry = Callable[[Services, Context, Any, KafkaAdmin], Awaitable[dict[str, Any] | None]]
"""Carries one action out; returns the status patch of what it changed, if any."""


async def _create(services: Services, ctx: Context, action: replay.CreateReplay, admin: KafkaAdmin) -> None:
    await create_replay(services, ctx, admin)


async def _cut_over(
    services: Services, ctx: Context, action: replay.CutOver, admin: KafkaAdmin
) -> dict[str, Any]:
    return await cut_over(services, ctx, action)


async def _promote(
    services: Services, ctx: Context, action: replay.PromoteVersion, admin: KafkaAdmin
) -> None:
    await unthrottle(ctx)  # live now: the StreamJob adopts it (it watches this run)


async def _remove(services: Services, ctx: Context, action: replay.RemoveReplay, admin: KafkaAdmin) -> None:
    await remove_replay(services, ctx.obj, ctx.run, ctx.job, admin)


async def _decommission(
    services: Services, ctx: Context, action: replay.DecommissionPrevious, admin: KafkaAdmin
) -> None:
    await decommission(services, ctx.obj, ctx.run, admin)


async def _stop(services: Services, ctx: Context, action: replay.StopReplay, admin: KafkaAdmin) -> None:
    await stop_replay(services, ctx.obj, ctx.run, admin)


CARRY_OUT: dict[type, Carry] = {
    replay.CreateReplay: _create,
    replay.CutOver: _cut_over,
    replay.PromoteVersion: _promote,
    replay.RemoveReplay: _remove,
    replay.DecommissionPrevious: _decommission,
    replay.StopReplay: _stop,
}


@dataclass
class Outcome:
    """What the actions of one pass changed, and the failure that stopped them: one status write."""

    patch: dict[str, Any] = field(default_factory=dict)
    conditions: list[ConditionUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    stopped: bool = False

    @property
    def writes(self) -> bool:
        return bool(self.patch or self.conditions or self.events)

    def stop(self, conditions: list[ConditionUpdate], events: list[Event]) -> Outcome:
        self.conditions, self.events, self.stopped = conditions, events, True
        return self


async def act(
    services: Services, ctx: Context, actions: list[replay.ReplayAction], admin: KafkaAdmin
) -> Outcome:
    out = Outcome()
    for action in actions:
        what = type(action).__name__
        try:
            out.patch |= await CARRY_OUT[type(action)](services, ctx, action, admin) or {}
        except BackendUnavailable as exc:  # an outage, not a refusal: the next reconcile looks again
            message = f"{exc}; {what} is retried"
            return out.stop(
                stalled("BackendUnavailable", message), once(ctx.status, "BackendUnavailable", message)
            )
        except AliasMoved as exc:
            metrics.cutover_failures.labels(ctx.namespace, "ReplayRun", ctx.name, "AliasMoved").inc()
            return out.stop(stalled("AliasMoved", str(exc)), once(ctx.status, "AliasMoved", str(exc)))
        except (AliasError, KafkaAdapterError, ViewUnavailable, ApiException, NotServed) as exc:
            message = f"{what} failed, retried on the next reconcile: {exc}"
            return out.stop([], once(ctx.status, "ActionFailed", message))
        except (RuntimeUnavailable, KafkaClientError) as exc:  # e.g. the broker went during the replay set-up
            reason, why = outage(exc, admin)
            if reason is None:
                raise
            message = f"{why}; retrying"
            return out.stop(stalled(reason, message), once(ctx.status, reason, message))
        acted("replayrun", ctx.namespace, ctx.name)  # a failpoint after each side effect
    return out


def outage(exc: Exception, admin: KafkaAdmin) -> tuple[str | None, str]:
    """The reason an observation failed on an outage, and what to say; None when it was no outage."""
    if isinstance(exc, RuntimeUnavailable):
        return "FlinkUnavailable", str(exc)
    if isinstance(exc, BackendUnavailable):
        return "BackendUnavailable", str(exc)
    why = kafka_outage(exc, admin)
    if why is not None:
        return "KafkaUnreachable", why
    return None, str(exc)
