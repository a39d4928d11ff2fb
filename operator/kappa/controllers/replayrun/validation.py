"""A replay's validation gates before its cutover (spec.validation): row counts of the new output against the
active one, a sampled key diff, and SQL checks, measured through the MaterializedView's backend and judged by
machines/validation.py. An outage of the backend is no failed gate: it is reported and measured again."""

from __future__ import annotations

import logging

from kappa.adapters.alias import AliasError, BackendUnavailable
from kappa.adapters.serving import ServedView, Unsupported
from kappa.controllers.cluster import ViewUnavailable, open_view
from kappa.controllers.replayrun.context import Context, Services
from kappa.machines import validation
from kappa.machines.preflight import Check

log = logging.getLogger(__name__)


async def validate(services: Services, ctx: Context) -> tuple[Check, ...] | None:
    """The gates' checks; None: could not measure now (measured again until the deadline)."""
    gates = ctx.run.validation
    if ctx.view_spec is None:
        return (Check("View", "Error", "ViewNotFound", f"MaterializedView {ctx.view_name} not found"),)
    try:
        view = await open_view(services.kube, ctx.namespace, ctx.view_spec, services.admin(ctx))
        measured = await _measure(ctx, view)
    except BackendUnavailable:
        raise  # an outage is no failed gate: the reconcile says so and validates again
    except (ViewUnavailable, AliasError) as exc:
        return (Check("View", "Error", "ViewUnavailable", str(exc)),)
    except Exception as exc:  # unreachable for now: measured again until the deadline
        log.warning("ReplayRun %s/%s: validation could not run: %s", ctx.namespace, ctx.name, exc)
        return None
    limits = validation.Gates(
        gates.count_ratio.min,
        gates.count_ratio.max,
        gates.sample_key_diff.max_mismatch_ratio if gates.sample_key_diff else None,
        gates.no_data,
    )
    return validation.evaluate(measured, limits)


async def _measure(ctx: Context, view: ServedView) -> validation.Measured:
    gates = ctx.run.validation
    active = ctx.physical(ctx.view_active)
    new = ctx.physical(ctx.run.version)
    assert new is not None
    active_count = await view.count(active) if active else None
    new_count = await view.count(new)
    diff: validation.KeyDiff | str | None = None
    if gates.sample_key_diff and active and active_count:
        try:
            sampled, differing, examples = await view.key_diff(
                active,
                new,
                sample=gates.sample_key_diff.sample_size,
                ignore=list(gates.sample_key_diff.ignore_columns),
            )
            diff = validation.KeyDiff(sampled, differing, tuple(examples))
        except BackendUnavailable:
            raise
        except (Unsupported, AliasError) as exc:
            diff = str(exc)
    sql: list[tuple[str, bool, str]] = []
    for check in gates.sql:
        try:
            ok, message = await view.check(new, check.query)
        except Unsupported as exc:
            ok, message = False, str(exc)
        sql.append((check.name, ok, message))
    return validation.Measured(active, new, active_count, new_count, diff, tuple(sql))
