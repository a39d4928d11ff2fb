"""What a StreamJob looks at, kept by Kopf's watch streams instead of a LIST per look, and the watch events
that wake it.

- `flinkdeployments_by_job`: its versions' FlinkDeployments (label `kappa.dev/job`), keyed (namespace, job).
- `replayruns_by_job`: the ReplayRuns of a job (`spec.jobRef.name`), keyed (namespace, job);
- `streamjobs_by_view`: the StreamJobs naming a MaterializedView (`spec.output.view`), keyed
  (namespace, view), for the view's looks;
- `materializedviews_by_key`: every watched MaterializedView, keyed (namespace, name), for the views' resync.

Kopf lists each kind once at start (every handler waits until the indexes are filled), then follows the
watch; a deleted object leaves its index. The values are the objects as the API server last sent them, less
what nothing reads (`slim`), kept as compact JSON (`kept`): a FlinkDeployment is 2-3 KiB so, against 10-11
KiB as dicts, and at 1,000 jobs there are 2,000 of them after an upgrade. Readers decode their own copies
(`copies`), as fast as the deep copy they took before. An index trails the operator's own writes by the
time their watch event takes, so a look right after a write can still see the world before it; every act
of the StreamJob controller is idempotent (server-side apply, names derived from the spec), so such a look
repeats an act at worst, and the write's own event brings the next look.

A change of a child or a run wakes its StreamJob at once (controllers/schedule.py): of its FlinkDeployments,
only a change of what the job reads (`deployment_facts`); its output's Strimzi KafkaTopic; a ReplayRun of
the job. So does a change of a StreamJob's annotations (a rollback request), and a generation its status
has not observed yet: a create or a spec change (`new_generation`), as controller-runtime's generation
predicate does. Other events seen while Kopf lists at start wake nothing: every StreamJob is looked at once
at start anyway.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any

import kopf

from kappa.api.base import GROUP, VERSION
from kappa.machines.fko import deployment_facts, only_checkpointed

FKO_GROUP, FKO_VERSION = "flink.apache.org", "v1beta1"
JOB_LABEL = "kappa.dev/job"


UNREAD: tuple[tuple[str, ...], ...] = (
    ("metadata", "managedFields"),
    ("status", "reconciliationStatus", "lastReconciledSpec"),
    ("status", "reconciliationStatus", "lastStableSpec"),
)
"""What no look reads of a watched object, and the indexes do not keep: server-side apply's field ownership,
and FKO's two copies of the whole spec as JSON (the reconciled and the stable one). At 1,000 jobs they were
most of what the indexes held."""


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The object as the API server sent it, less what nothing reads (UNREAD). The body itself is not
    changed: the dicts on the way to a dropped field are copied."""
    slimmed = dict(body)
    for *parents, leaf in UNREAD:
        holder = slimmed
        for step in parents:
            child = holder.get(step)
            if not isinstance(child, Mapping):
                break
            holder[step] = holder = dict(child)
        else:
            holder.pop(leaf, None)
    return slimmed


def kept(body: Mapping[str, Any]) -> bytes:
    """The object as an index keeps it: `slim(body)` as compact JSON."""
    return json.dumps(slim(body), separators=(",", ":")).encode()


def copies(index: kopf.Index[Hashable, Any] | None, key: Hashable) -> list[dict[str, Any]]:
    """The objects stored under `key`, decoded: plain dicts of the caller's own, to change at will."""
    if index is None or key not in index:
        return []
    return [json.loads(value) for value in index[key]]


@kopf.index(FKO_GROUP, FKO_VERSION, "flinkdeployments", labels={JOB_LABEL: kopf.PRESENT})
async def flinkdeployments_by_job(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], bytes]:
    return {(str(namespace), labels[JOB_LABEL]): kept(body)}


@kopf.index(GROUP, VERSION, "replayruns")
async def replayruns_by_job(
    namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], bytes] | None:
    job = (spec.get("jobRef") or {}).get("name")
    return {(str(namespace), str(job)): kept(body)} if job else None


@kopf.index(GROUP, VERSION, "streamjobs")
async def streamjobs_by_view(
    namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], bytes] | None:
    """The StreamJobs that name a MaterializedView in spec.output.view, for the view's looks."""
    view = (spec.get("output") or {}).get("view")
    return {(str(namespace), str(view)): kept(body)} if view else None


@kopf.index(GROUP, VERSION, "materializedviews")
async def materializedviews_by_key(namespace: str | None, name: str, **_: Any) -> dict[tuple[str, str], bool]:
    """Every MaterializedView the operator watches (all namespaces, or those of `kappa run -n`), for the
    views' resync: no LIST per round, and none outside the watched namespaces."""
    return {(str(namespace), name): True}


@kopf.on.event(FKO_GROUP, FKO_VERSION, "flinkdeployments", labels={JOB_LABEL: kopf.PRESENT})
async def wake_on_deployment(
    type: str,
    namespace: str | None,
    name: str,
    labels: Mapping[str, str],
    body: kopf.Body,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Only a change of what the job reads wakes it (`deployment_facts`): FKO's status rewrites at rest
    (timestamps, checkpoint triggers) do not, nor, for a job at rest (its last look asked for the next
    later than the interval), a periodic checkpoint. Listed at start (type None): remembered, wakes
    nothing. Nor does a new FlinkDeployment that FKO has not yet reported on: the look that applied it
    is the one that just ended (a wake would repeat it at once, a look per create at 1,000 jobs)."""
    key, job = (str(namespace), name), (str(namespace), labels[JOB_LABEL])
    seen: dict[tuple[str, str], tuple[Any, ...]] = memo.deployment_facts
    if type == "DELETED":
        seen.pop(key, None)
        memo.streamjob_schedule.wake(job)
        return
    before, facts = seen.get(key), deployment_facts(body)
    seen[key] = facts
    if type is None or before == facts:
        return
    if type == "ADDED" and not body.status:
        return  # created by the job's own look, which saw to what comes next; FKO's first status wakes it
    if only_checkpointed(before, facts) and job in memo.streamjobs_resting:
        return
    memo.streamjob_schedule.wake(job)


@kopf.on.event("kafka.strimzi.io", "kafkatopics", labels={JOB_LABEL: kopf.PRESENT})
async def wake_on_topic(
    type: str, namespace: str | None, labels: Mapping[str, str], memo: kopf.Memo, **_: Any
) -> None:
    """Strimzi's topic operator made a version's output topic Ready (or not): the job's Ready follows it.
    A deletion wakes nothing: the job's next look applies the topic again (a topic deleted by hand comes
    back at the cadence, as it did with the timer, not in the same instant)."""
    if type in ("ADDED", "MODIFIED"):
        memo.streamjob_schedule.wake((str(namespace), labels[JOB_LABEL]))


@kopf.on.event(GROUP, VERSION, "replayruns")
async def wake_on_replayrun(
    type: str, namespace: str | None, spec: kopf.Spec, memo: kopf.Memo, **_: Any
) -> None:
    job = (spec.get("jobRef") or {}).get("name")
    if type is not None and job:
        memo.streamjob_schedule.wake((str(namespace), str(job)))


def new_generation(generation: object, observed: object, woken: object) -> bool:
    """A generation (of the spec) that the status has not observed, and that no event has woken a look for
    yet: once per create and per spec change, however many events follow until a look records it."""
    return generation is not None and generation not in (observed, woken)


@kopf.on.event(GROUP, VERSION, "streamjobs")
async def wake_on_request(
    type: str,
    namespace: str | None,
    name: str,
    meta: kopf.Meta,
    event: kopf.RawEvent,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A new generation (a create, a spec change) is looked at at once, by the schedule's workers: Kopf's
    create and update handlers would first patch Kopf's record of the handled spec, and held the job's events
    meanwhile (controllers/runtime.py). A request is an annotation (kappa.dev/rollback): a change of the
    annotations wakes the job. Its own status writes, which are most of its events, do not. Every event hands
    the job as it shows it to the copy the looks read instead of a GET (controllers/known.py)."""
    key = (str(namespace), name)
    seen: dict[tuple[str, str], dict[str, str]] = memo.streamjob_annotations
    woken: dict[tuple[str, str], object] = memo.streamjob_generations
    schedule = memo.streamjob_schedule
    if type == "DELETED":
        seen.pop(key, None)
        woken.pop(key, None)
        schedule.forget(key)
        memo.streamjob_known.forget(key)
        return
    memo.streamjob_known.watched(key, event["object"])
    generation = meta.get("generation")
    observed = (event["object"].get("status") or {}).get("observedGeneration")
    if new_generation(generation, observed, woken.get(key)) and not meta.get("deletionTimestamp"):
        woken[key] = generation
        if key in schedule:
            # A look under way may have read the spec before the change: once more after it.
            schedule.wake(key)
        else:
            schedule.after(key, 0.0)
    annotations = dict(meta.get("annotations") or {})
    if type == "MODIFIED" and key in seen and seen[key] != annotations:
        schedule.wake(key)
    seen[key] = annotations
