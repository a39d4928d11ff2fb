"""A double of Strimzi's (unidirectional) topic operator, 1.2: it makes each KafkaTopic's topic real in the
test Kafka and writes status the way BatchingTopicController does, scriptable per test ("fails", "is slow").

As Strimzi:
- only KafkaTopics labelled `strimzi.io/cluster` are acted on (any value: the test bed has one Kafka);
- the topic is `spec.topicName`, else `metadata.name`; it is created with spec partitions, replicas (-1: the
  broker default when absent) and config; later, config is reconciled with incremental alters (SET what
  differs, DELETE dynamic topic configs the spec no longer has) and partitions only grow;
- status is `{conditions: [one Ready condition], observedGeneration, topicName, topicId}`, the condition
  `Ready=True`, or `Ready=False` with reason and message:
  `NotSupported` "Decreasing partitions not supported" / "Replication factor change not supported, but
  required for partitions [..]" / "Changing spec.topicName is not supported"; `KafkaError` with the Java
  exception's toString, e.g. "org.apache.kafka.common.errors.InvalidConfigurationException: Invalid value
  abc for configuration retention.ms: Not a number of type LONG"; `ResourceConflict` "Managed by
  Ref{namespace='…', name='…'}" when an older KafkaTopic in the namespace manages the same topic;
- `strimzi.io/managed: "false"` leaves Kafka alone (and keeps the topic when the resource is deleted), with
  `Ready=True` and no `status.topicName`; `strimzi.io/pause-reconciliation: "true"` gives
  `ReconciliationPaused=True` and leaves observedGeneration behind;
- deleting a managed KafkaTopic deletes its topic. By default that happens on the watch's DELETED event, as
  Strimzi does with STRIMZI_USE_FINALIZERS=false; `use_finalizers=True` adds Strimzi's finalizer
  `strimzi.io/topic-operator` and deletes the topic before releasing it (then `stop()` releases the finalizers
  still held, or test namespaces would hang in Terminating once the double is gone).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
    TopicDescription,
)
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.doubles.double import Double
from tests.doubles.kube_watch import Key, Obj, Resource, api_client, key_of, replace_status

log = logging.getLogger(__name__)

KAFKA_TOPICS = Resource("kafka.strimzi.io", "v1", "kafkatopics", "KafkaTopic")
CLUSTER_LABEL = "strimzi.io/cluster"
MANAGED = "strimzi.io/managed"
PAUSED = "strimzi.io/pause-reconciliation"
FINALIZER = "strimzi.io/topic-operator"

_JAVA_ERRORS = {
    # confluent-kafka's error names for the Java ApiException classes Strimzi's messages carry.
    "INVALID_CONFIG": "InvalidConfigurationException",
    "INVALID_REPLICATION_FACTOR": "InvalidReplicationFactorException",
    "INVALID_PARTITIONS": "InvalidPartitionsException",
    "INVALID_TOPIC_EXCEPTION": "InvalidTopicException",
    "INVALID_REQUEST": "InvalidRequestException",
    "POLICY_VIOLATION": "PolicyViolationException",
    "TOPIC_ALREADY_EXISTS": "TopicExistsException",
    "UNKNOWN_TOPIC_OR_PART": "UnknownTopicOrPartitionException",
    "TOPIC_AUTHORIZATION_FAILED": "TopicAuthorizationException",
    "CLUSTER_AUTHORIZATION_FAILED": "ClusterAuthorizationException",
    "TOPIC_DELETION_DISABLED": "TopicDeletionDisabledException",
    "REQUEST_TIMED_OUT": "TimeoutException",
    "_TIMED_OUT": "TimeoutException",
}


class TopicOperatorError(Exception):
    """Strimzi's TopicOperatorException: one failure, which becomes the Ready=False condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _kafka_error(e: KafkaException) -> TopicOperatorError:
    """TopicOperatorException.KafkaError: its message is the Java ApiException's toString()."""
    err: KafkaError = e.args[0]
    name = _JAVA_ERRORS.get(err.name()) or "".join(p.capitalize() for p in err.name().strip("_").split("_"))
    if not name.endswith("Exception"):
        name += "Exception"
    return TopicOperatorError("KafkaError", f"org.apache.kafka.common.errors.{name}: {err.str()}")


def _is(e: KafkaException, code: int) -> bool:
    return isinstance(e.args[0], KafkaError) and e.args[0].code() == code


def _config_value(value: Any) -> str:
    """BatchingTopicController.configValueAsString: scalars and lists of them, as Java prints them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list):
        return ",".join(_config_value(v) for v in value)
    raise TopicOperatorError("InternalError", f"java.lang.RuntimeException: Cannot convert {value}")


def _iso8601_now() -> str:
    """StatusUtils.iso8601Now(): ISO_INSTANT in UTC."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _topic_id(description: TopicDescription) -> str:
    """Kafka's Uuid.toString() is URL-safe base64 without padding; confluent-kafka prints the standard one."""
    return str(description.topic_id).replace("+", "-").replace("/", "_").rstrip("=")


def _without_times(status: dict[str, Any] | None) -> str:
    """A status as Strimzi compares them before writing: a new lastTransitionTime alone is no change."""
    status = deepcopy(status or {})
    for condition in status.get("conditions") or []:
        condition.pop("lastTransitionTime", None)
    return json.dumps(status, sort_keys=True)


class FakeTopicOperator(Double):
    """Watches `kafkatopics.kafka.strimzi.io/v1` (label `strimzi.io/cluster`), makes the topics real in the
    test Kafka at `bootstrap`, and writes status as Strimzi's topic operator does.

    Scripts: `fail(name, reason, message)` makes a KafkaTopic's reconciliation fail with that condition (Kafka
    untouched) until `heal(name)`; `delay(seconds)` holds every batch of reconciliations back that long;
    `reset()` clears both. Questions: `status(namespace, name)`, `ready(namespace, name)`.
    """

    resource = KAFKA_TOPICS

    def __init__(
        self,
        kubeconfig: Path | str,
        bootstrap: str,
        *,
        namespaces: Iterable[str] | None = None,
        use_finalizers: bool = False,
        resync_interval: float = 5.0,
        admin_timeout: float = 15.0,
    ) -> None:
        super().__init__(kubeconfig, namespaces=namespaces, label_selector=CLUSTER_LABEL)
        self.bootstrap = bootstrap
        self.use_finalizers = use_finalizers
        self.resync_interval = resync_interval
        self.admin_timeout = admin_timeout
        self._dirty: set[Key] = set()
        self._deleted: list[Obj] = []
        self._failures: dict[tuple[str | None, str], tuple[str, str]] = {}
        self._delay = 0.0
        self._busy = False
        self._written: dict[Key, dict[str, Any]] = {}

    # --- scripts -----------------------------------------------------------------------------------------

    def fail(
        self,
        name: str,
        reason: str = "KafkaError",
        message: str = "org.apache.kafka.common.errors.TimeoutException: Timed out waiting for a node.",
        *,
        namespace: str | None = None,
    ) -> None:
        """Reconciling KafkaTopic `name` fails with Ready=False `reason`/`message` until `heal(name)`."""
        with self._lock:
            self._failures[(namespace, name)] = (reason, message)
        self._touch(name, namespace)

    def heal(self, name: str, *, namespace: str | None = None) -> None:
        with self._lock:
            self._failures.pop((namespace, name), None)
        self._touch(name, namespace)

    def delay(self, seconds: float) -> None:
        """Each batch of reconciliations waits this long before it starts, as a busy operator's would."""
        with self._lock:
            self._delay = seconds

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delay = 0.0

    def _touch(self, name: str, namespace: str | None) -> None:
        with self._lock:
            for obj in self.watcher.snapshot():
                ns, n = key_of(obj)
                if n == name and namespace in (None, ns):
                    self._dirty.add((ns, n))
        self._wake.set()

    def _failure_for(self, namespace: str, name: str) -> tuple[str, str] | None:
        with self._lock:
            return self._failures.get((namespace, name)) or self._failures.get((None, name))

    # --- questions ---------------------------------------------------------------------------------------

    def status(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The status this double last wrote for the KafkaTopic."""
        with self._lock:
            written = self._written.get((namespace, name))
            return deepcopy(written) if written else None

    def drain(self, timeout: float = 10) -> None:
        """Wait until every change seen so far is acted on (a deleted KafkaTopic's topic deleted, too)."""

        def idle() -> bool:
            with self._lock:
                return not (self._busy or self._dirty or self._deleted)

        self.wait_until(idle, timeout, what="the topic operator double to go idle")

    def ready(self, namespace: str, name: str) -> bool:
        """Ready=True for the current generation: what "the topic is there" means to a Strimzi user."""
        obj = self.watcher.get((namespace, name))
        status = self.status(namespace, name)
        if not obj or not status:
            return False
        ready = [c for c in status.get("conditions", []) if c.get("type") == "Ready"]
        current = status.get("observedGeneration") == obj["metadata"].get("generation")
        return current and bool(ready) and ready[0].get("status") == "True"

    # --- watch side --------------------------------------------------------------------------------------

    def _on_change(self, kind: str, obj: Obj) -> None:
        with self._lock:
            if kind == "DELETED":
                self._deleted.append(obj)
            else:
                self._dirty.add(key_of(obj))
        self._wake.set()

    def _rescan(self, namespace: str) -> None:
        with self._lock:
            self._dirty.update(key_of(o) for o in self.watcher.snapshot() if key_of(o)[0] == namespace)

    # --- the worker --------------------------------------------------------------------------------------

    def _work(self) -> None:
        custom = client.CustomObjectsApi(api_client(self.kubeconfig))
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        next_resync = time.monotonic() + self.resync_interval
        try:
            while not self._stopping.is_set():
                self._wake.wait(max(0.0, next_resync - time.monotonic()))
                self._wake.clear()
                if self._stopping.is_set():
                    break
                if time.monotonic() >= next_resync:
                    # Strimzi reconciles every topic periodically too, which reverts drift made in Kafka.
                    next_resync = time.monotonic() + self.resync_interval
                    with self._lock:
                        self._dirty.update(key_of(o) for o in self.watcher.snapshot())
                with self._lock:
                    dirty, self._dirty = sorted(self._dirty), set()
                    deleted, self._deleted = self._deleted, []
                    delay = self._delay
                    self._busy = True
                for obj in deleted:
                    if self.manages(obj["metadata"]["namespace"]):
                        self._guarded(obj, lambda o: self._on_deleted(custom, admin, o))
                dirty = [key for key in dirty if self.manages(key[0])]
                if dirty and delay and self._stopping.wait(delay):
                    break
                for key in dirty:
                    current = self.watcher.get(key)
                    if current is not None:
                        self._guarded(current, lambda o: self._reconcile(custom, admin, o))
                with self._lock:
                    self._busy = False
        finally:
            if self.use_finalizers:
                self._release_finalizers(custom)

    def _guarded(self, obj: Obj, action: Callable[[Obj], None]) -> None:
        try:
            action(obj)
        except Exception as e:
            ns, name = key_of(obj)
            self._record_error(f"KafkaTopic {ns}/{name}", e)

    def _reconcile(self, custom: client.CustomObjectsApi, admin: AdminClient, obj: Obj) -> None:
        meta = obj["metadata"]
        namespace, name = key_of(obj)
        annotations = meta.get("annotations") or {}
        managed = annotations.get(MANAGED) != "false"
        topic = (obj.get("spec") or {}).get("topicName") or name
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or []):
                if managed:
                    try:
                        self._delete_topic(admin, (obj.get("status") or {}).get("topicName") or topic)
                    except TopicOperatorError as e:
                        self._write_status(custom, obj, _condition("Ready", "False", e), managed=managed)
                        return
                self._set_finalizer(custom, obj, present=False)
            return
        if self.use_finalizers and not self._set_finalizer(custom, obj, present=True):
            return  # changed under us; the watch brings the newer version back here
        if not managed:
            self._write_status(custom, obj, _condition("Ready", "True"), managed=False)
            return
        try:
            self._validate(obj, topic)
            if annotations.get(PAUSED) == "true":
                self._write_status(custom, obj, _condition("ReconciliationPaused", "True"), paused=True)
                return
            scripted = self._failure_for(namespace, name)
            if scripted:
                raise TopicOperatorError(*scripted)
            topic_id = self._sync(admin, topic, obj.get("spec") or {})
        except TopicOperatorError as e:
            self._write_status(custom, obj, _condition("Ready", "False", e))
            return
        self._write_status(custom, obj, _condition("Ready", "True"), topic_id=topic_id)

    def _validate(self, obj: Obj, topic: str) -> None:
        """validateUnchangedTopicName and validateSingleManagingResource."""
        status = obj.get("status") or {}
        if status.get("topicName") and status["topicName"] != topic:
            raise TopicOperatorError("NotSupported", "Changing spec.topicName is not supported")
        namespace, name = key_of(obj)
        rivals = [
            o
            for o in self.watcher.snapshot()
            if o["metadata"]["namespace"] == namespace
            and ((o.get("spec") or {}).get("topicName") or o["metadata"]["name"]) == topic
            and (o["metadata"].get("annotations") or {}).get(MANAGED) != "false"
            and not o["metadata"].get("deletionTimestamp")
        ]
        if len(rivals) < 2:
            return
        # creationTimestamp counts whole seconds; among equals, the one already Ready holds the topic.
        rivals.sort(
            key=lambda o: (o["metadata"]["creationTimestamp"], not _is_ready(o), o["metadata"]["name"])
        )
        oldest, next_oldest = rivals[0], rivals[1]
        if oldest["metadata"]["name"] == name:
            unique = oldest["metadata"]["creationTimestamp"] != next_oldest["metadata"]["creationTimestamp"]
            if unique or _is_ready(obj):
                return
        holder = oldest["metadata"]["name"]
        raise TopicOperatorError(
            "ResourceConflict", f"Managed by Ref{{namespace='{namespace}', name='{holder}'}}"
        )

    # --- Kafka -------------------------------------------------------------------------------------------

    def _describe(self, admin: AdminClient, topic: str) -> TopicDescription | None:
        try:
            described: TopicDescription = admin.describe_topics(TopicCollection([topic]))[topic].result(
                self.admin_timeout
            )
            return described
        except KafkaException as e:
            if _is(e, KafkaError.UNKNOWN_TOPIC_OR_PART):
                return None
            raise _kafka_error(e) from e

    def _sync(self, admin: AdminClient, topic: str, spec: dict[str, Any]) -> str:
        """Create the topic, or bring it to the spec; return its id. Raises the condition's failure, choosing
        among several as Strimzi does: partition decrease, config, partition increase, replication factor."""
        config = {k: _config_value(v) for k, v in (spec.get("config") or {}).items()}
        current = self._describe(admin, topic)
        if current is None:
            new = NewTopic(
                topic,
                num_partitions=spec.get("partitions", -1),
                replication_factor=spec.get("replicas", -1),
                config=config,
            )
            try:
                admin.create_topics([new])[topic].result(self.admin_timeout)
            except KafkaException as e:
                if not _is(e, KafkaError.TOPIC_ALREADY_EXISTS):  # Strimzi: the next pass checks the config
                    raise _kafka_error(e) from e
            # A new topic reaches the metadata a moment after creation; Strimzi says Ready once it is there.
            deadline = time.monotonic() + self.admin_timeout
            while (current := self._describe(admin, topic)) is None and time.monotonic() < deadline:
                time.sleep(0.05)
            return _topic_id(current) if current else ""
        failures: list[TopicOperatorError] = []
        partitions = spec.get("partitions")
        have = len(current.partitions)
        if partitions is not None and partitions < have:
            failures.append(TopicOperatorError("NotSupported", "Decreasing partitions not supported"))
        try:
            self._alter_config(admin, topic, config)
        except TopicOperatorError as e:
            failures.append(e)
        if partitions is not None and partitions > have:
            try:
                admin.create_partitions([NewPartitions(topic, partitions)])[topic].result(self.admin_timeout)
            except KafkaException as e:
                failures.append(_kafka_error(e))
        replicas = spec.get("replicas")
        if replicas is not None and {len(p.replicas) for p in current.partitions} != {replicas}:
            # Without Cruise Control, Strimzi refuses, naming the partitions that would need a change.
            differing = sorted(p.id for p in current.partitions if len(p.replicas) != replicas)
            failures.append(
                TopicOperatorError(
                    "NotSupported",
                    "Replication factor change not supported, but required for partitions "
                    f"[{', '.join(map(str, differing))}]",
                )
            )
        if failures:
            raise failures[0]
        return _topic_id(current)

    def _alter_config(self, admin: AdminClient, topic: str, config: dict[str, str]) -> None:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        try:
            entries = admin.describe_configs([resource])[resource].result(self.admin_timeout)
        except KafkaException as e:
            raise _kafka_error(e) from e
        ops = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in config.items()
            if k not in entries or entries[k].value != v
        ]
        ops += [
            ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE)
            for k, entry in entries.items()
            if entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and k not in config
        ]
        if not ops:
            return
        alter = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=ops)
        try:
            for future in admin.incremental_alter_configs([alter]).values():
                future.result(self.admin_timeout)
        except KafkaException as e:
            raise _kafka_error(e) from e

    def _delete_topic(self, admin: AdminClient, topic: str) -> None:
        try:
            admin.delete_topics([topic])[topic].result(self.admin_timeout)
        except KafkaException as e:
            if not _is(e, KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise _kafka_error(e) from e

    def _on_deleted(self, custom: client.CustomObjectsApi, admin: AdminClient, obj: Obj) -> None:
        """The watch lost the object: deleted, or no longer labelled (then Strimzi just forgets it)."""
        namespace, name = key_of(obj)
        with self._lock:
            self._written.pop((namespace, name), None)
        if self.use_finalizers:
            return  # the topic went with the finalizer, before the object could disappear
        if ((obj["metadata"].get("annotations") or {}).get(MANAGED)) == "false":
            return
        r = KAFKA_TOPICS
        try:
            custom.get_namespaced_custom_object(
                r.group, r.version, namespace, r.plural, name, _request_timeout=10
            )
            return  # still there, only unlabelled
        except ApiException as e:
            if e.status != 404:
                raise
        topic = (obj.get("status") or {}).get("topicName") or (obj.get("spec") or {}).get("topicName") or name
        try:
            self._delete_topic(admin, topic)
        except TopicOperatorError as e:
            log.warning("Unable to delete topic '%s' from Kafka: %s", topic, e.message)

    # --- the API server ----------------------------------------------------------------------------------

    def _write_status(
        self,
        custom: client.CustomObjectsApi,
        obj: Obj,
        condition: dict[str, Any],
        *,
        managed: bool = True,
        paused: bool = False,
        topic_id: str | None = None,
    ) -> None:
        """BatchingTopicController.updateStatus: one condition; observedGeneration unless paused; topicName as
        first recorded (none when unmanaged); the topicId kept once known."""
        meta = obj["metadata"]
        namespace, name = key_of(obj)
        old: dict[str, Any] = obj.get("status") or {}
        new = {k: v for k, v in old.items() if k not in ("conditions", "observedGeneration", "topicName")}
        new["conditions"] = [condition]
        new["observedGeneration"] = old.get("observedGeneration", 0) if paused else meta.get("generation")
        if managed:
            new["topicName"] = old.get("topicName") or (obj.get("spec") or {}).get("topicName") or name
        if topic_id and not old.get("topicId"):
            new["topicId"] = topic_id
        if _without_times(new) != _without_times(old):
            replace_status(custom, KAFKA_TOPICS, obj, new)
        with self._lock:
            self._written[(namespace, name)] = new

    def _set_finalizer(self, custom: client.CustomObjectsApi, obj: Obj, *, present: bool) -> bool:
        """Add or remove Strimzi's finalizer, guarded by resourceVersion; False if the object changed
        first."""
        meta = obj["metadata"]
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if (FINALIZER in finalizers) == present:
            return True
        finalizers = [*finalizers, FINALIZER] if present else [f for f in finalizers if f != FINALIZER]
        r = KAFKA_TOPICS
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        try:
            custom.patch_namespaced_custom_object(
                r.group,
                r.version,
                meta["namespace"],
                r.plural,
                meta["name"],
                patch,
                _content_type="application/merge-patch+json",
                _request_timeout=10,
            )
        except ApiException as e:
            if e.status in (404, 409):
                return False
            raise
        return True

    def _release_finalizers(self, custom: client.CustomObjectsApi) -> None:
        """On stop: nothing will honour the finalizer any more, so let go of it rather than strand the
        objects (a namespace being deleted would hang in Terminating)."""
        r = KAFKA_TOPICS
        for cached in self.watcher.snapshot():
            namespace, name = key_of(cached)
            if not self.manages(namespace) or FINALIZER not in (cached["metadata"].get("finalizers") or []):
                continue
            obj: Any = cached
            for _ in range(3):
                try:
                    if self._set_finalizer(custom, obj, present=False):
                        break
                    obj = custom.get_namespaced_custom_object(
                        r.group, r.version, namespace, r.plural, name, _request_timeout=10
                    )
                except ApiException as e:
                    if e.status == 404:
                        break
                    log.warning("could not release the finalizer of KafkaTopic %s/%s: %s", namespace, name, e)
                    break


def _is_ready(obj: Obj) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _condition(type_: str, status: str, error: TopicOperatorError | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": type_, "status": status, "lastTransitionTime": _iso8601_now()}
    if error is not None:
        condition["reason"] = error.reason
        condition["message"] = error.message
    return condition
