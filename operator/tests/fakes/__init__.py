"""In-memory fakes of the adapters, for the controller tier (tests/controllers/): the controllers run their
real code against them, as FKO's own controller tests run against `TestingFlinkService`.

- kube.py: `FakeKube`, the API server behind adapters/kube.py's `Kube` (resourceVersion, generation, status
  subresource as a JSON merge patch, server-side apply, compare-and-swap, garbage collection);
- core_api.py: the same objects behind the official client's REST layer, for the event recorder and the
  ConfigMap alias (injected with `kappa.adapters.kube.use_api_client`);
- kafka.py: `FakeKafka` behind adapters/kafka/admin.py's `KafkaAdmin`, and `FakeLagTracking`;
- fko.py: `FakeFko`, the FKO double of tests/doubles/fko.py stepped in memory;
- strimzi.py: `FakeStrimzi`, the topic operator (KafkaTopic status) and a Strimzi `Kafka` with a listener;
- world.py: `World`, the reconcilers over one set of fakes, and what a test reads back.
"""
