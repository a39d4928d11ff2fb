"""The Kafka adapter: the only Kafka I/O in the package, on confluent-kafka's AdminClient (and a consumer
where the admin API cannot answer: record timestamps and marker-aware record counts). Consumer groups are
read, committed and deleted with kafka-python instead (`GroupAdmin`): librdkafka's AdminClient crashes the
whole process on some answers of a group coordinator that is not ready, which a fresh Kafka gives for a while.

Every method is async. Admin calls return concurrent futures, awaited (with a bound) on the event loop;
consumer and kafka-python calls block and run in worker threads. Nothing here blocks the event loop.

librdkafka logs only from CRITICAL up (`quiet_client_config`): a cluster that does not answer is logged by the
adapters, once when it stops answering and once when it answers again (`Reachability`), not on every reconnect
attempt, which librdkafka makes several times a second.

Every client is built from a `KafkaConnection`: bootstrap servers and the security settings (TLS, SASL) of the
cluster, in librdkafka's names; kafka-python's are derived from them. A bare bootstrap string is a PLAINTEXT
connection. Credentials never appear in a connection's repr, nor in any message of this package.

Where each part lives (this package re-exports nothing: import from the module):

- `connection`: `KafkaConnection` (bootstrap servers, TLS and SASL settings), the clients built from it
  (`quiet_client_config`, `pure_admin_client`) and the check that the cluster accepts its credentials
  (`authentication_failure_blocking`).
- `health`: whether a cluster answers (`Reachability`, `ClusterHealth`, `cluster_health`), logged once per
  outage.
- `values`: what the adapter returns and raises: `Partition`, `StartResolution`, `GroupInfo`, `TopicEnsured`,
  `KafkaAdapterError` and its kinds (`GroupInUse`, `PartitionDecreaseRefused`, `UnknownTopic`).
- `calls`: how one admin call is made: the bounded wait on its future (`await_future`) and the retry of
  transient errors (`retried`).
- `admin`: `KafkaAdmin`, the client the controllers use: topics (ensure, describe, delete, configs), offsets
  (log start, end, by time; where a replay starts), consumer groups (committed offsets, lag reads, seeding,
  deletion) and the retention preflight's partition facts.
- `groups`: `GroupAdmin`, consumer groups through kafka-python (why: see its docstring).
- `records`: reads the admin API cannot answer, with a read_committed consumer: the offsets of the data
  records in a range (the recount that skips transaction markers and aborted records) and record timestamps.
"""
