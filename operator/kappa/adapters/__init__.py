"""The only code that does I/O: Kubernetes, Kafka, Flink and serving-store clients."""
