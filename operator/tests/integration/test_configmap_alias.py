"""A MaterializedView's ConfigMap pointer: switched by compare-and-swap, never over a hand edit."""

from __future__ import annotations

import asyncio

import pytest
from kubernetes import config

from kappa.adapters.alias import AliasMoved
from kappa.adapters.configmap_alias import ConfigMapAlias
from tests.integration.testbed import Kubectl


@pytest.fixture
def alias(admin: Kubectl) -> ConfigMapAlias:
    return ConfigMapAlias(config.new_client_from_config(config_file=str(admin.kubeconfig)))


def test_the_pointer_is_created_switched_and_recognised_on_reentry(
    alias: ConfigMapAlias, kubectl: Kubectl
) -> None:
    ns = str(kubectl.namespace)
    first = asyncio.run(alias.cutover(ns, "orders-active", "activeTopic", "orders.v1", expected=None))
    second = asyncio.run(alias.cutover(ns, "orders-active", "activeTopic", "orders.v2", expected="orders.v1"))
    again = asyncio.run(alias.cutover(ns, "orders-active", "activeTopic", "orders.v2", expected="orders.v1"))

    assert (first.from_table, second.from_table, again.already_done) == (None, "orders.v1", True)
    assert kubectl.get("configmap", "orders-active")["data"] == {"activeTopic": "orders.v2"}


def test_a_pointer_edited_by_hand_is_not_overwritten(alias: ConfigMapAlias, kubectl: Kubectl) -> None:
    ns = str(kubectl.namespace)
    asyncio.run(alias.cutover(ns, "orders-active", "activeTopic", "orders.v1", expected=None))
    kubectl(
        "patch",
        "configmap",
        "orders-active",
        "--type=merge",
        "-p",
        '{"data":{"activeTopic":"orders.hotfix"}}',
    )

    with pytest.raises(AliasMoved, match=r"points at orders\.hotfix, not orders\.v1"):
        asyncio.run(alias.cutover(ns, "orders-active", "activeTopic", "orders.v2", expected="orders.v1"))
    assert kubectl.get("configmap", "orders-active")["data"] == {"activeTopic": "orders.hotfix"}
