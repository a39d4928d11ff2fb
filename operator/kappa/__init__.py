"""Kappa Operator: replay → catch-up → validate → atomic cutover → rollback, as Kubernetes resources."""

__version__ = "0.1.0"
