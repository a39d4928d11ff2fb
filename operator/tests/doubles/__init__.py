"""Test doubles for the two controllers that cannot run without a kubelet: the Flink Kubernetes Operator and
the Strimzi topic operator. Each is a small controller against the real API server that writes status the way
the real one does, scriptable per test. They belong to the tests, never to the product package."""
