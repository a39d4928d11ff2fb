"""The local control plane acts like a cluster where it matters: owned children are garbage-collected."""

from __future__ import annotations

import time

from tests.integration.testbed import ROOT, Kubectl


def test_children_with_owner_references_are_garbage_collected(kubectl: Kubectl) -> None:
    kubectl.apply(ROOT / "examples" / "07-materializedview-configmap.yaml")
    owner = kubectl.get("mv", "orders-enriched")
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "orders-enriched-active",
                "ownerReferences": [
                    {
                        "apiVersion": "kappa.dev/v1alpha1",
                        "kind": "MaterializedView",
                        "name": "orders-enriched",
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": {"activeTopic": "orders-enriched.v4"},
        }
    )
    kubectl("delete", "mv", "orders-enriched", "--wait=true", "--timeout=30s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if kubectl.run("get", "configmap", "orders-enriched-active", check=False).returncode != 0:
            return
        time.sleep(0.3)
    raise AssertionError("the owned ConfigMap outlived its MaterializedView: no garbage collection")


def test_deleted_namespaces_go_away(admin: Kubectl) -> None:
    admin("create", "namespace", "t-gc-probe")
    admin("delete", "namespace", "t-gc-probe", "--wait=true", "--timeout=60s")
    assert admin.run("get", "namespace", "t-gc-probe", check=False).returncode != 0
