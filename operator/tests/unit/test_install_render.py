"""The Helm chart and the kustomize base, rendered without a cluster: `helm lint`, the values the chart
refuses, the kustomize base and its monitoring components, and the comparison: for the same settings both
render the same objects (operator/tests/integration/test_install.py applies them to the real API server)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.install import (
    CHART,
    HELM_ONLY_LABELS,
    MANIFESTS,
    NAMESPACE,
    by_key,
    cluster_role_rules,
    helm,
    helm_template,
    kustomize,
    parse,
    run,
    without_helm_labels,
)

NAMESPACED = ("watchNamespaces={team-a,team-b}", "rbac.extraNamespaces={kafka,team-a}")
RBAC_RULES: list[dict[str, Any]] = cluster_role_rules(parse((MANIFESTS / "10-rbac.yaml").read_text()))


@pytest.mark.parametrize("values", [(), NAMESPACED], ids=["all-namespaces", "namespaced"])
def test_helm_lint_passes(values: tuple[str, ...]) -> None:
    args = [helm(), "lint", str(CHART), "--strict"]
    for value in values:
        args += ["--set", value]
    lint = run(*args)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout


# For the same settings: the chart's values, and the components of the kustomize base.
SAME_SETTINGS = {
    "defaults": ((), ()),
    "metrics-service": (("metrics.service.enabled=true",), ("components/metrics",)),
    "prometheus-operator": (
        ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"),
        ("components/monitoring",),
    ),
}


@pytest.mark.parametrize("setting", sorted(SAME_SETTINGS))
def test_helm_and_kustomize_render_the_same_objects(setting: str) -> None:
    """Compared as parsed objects. Left out: the Namespace (kustomize creates kappa-system; a Helm release
    goes into a namespace that exists or that `helm install --create-namespace` creates, as Helm's docs
    advise), and on the chart's side the labels only Helm can fill (HELM_ONLY_LABELS)."""
    values, components = SAME_SETTINGS[setting]
    kustomized = by_key(o for o in parse(kustomize(*components)) if o["kind"] != "Namespace")
    helmed = by_key(without_helm_labels(o) for o in parse(helm_template(*values)))
    assert sorted(helmed) == sorted(kustomized)
    for k, obj in kustomized.items():
        assert helmed[k] == obj, (
            f"{k} differs:\nhelm: {yaml.safe_dump(helmed[k])}\nkustomize: {yaml.safe_dump(obj)}"
        )


def test_the_chart_grants_exactly_the_rules_of_the_rbac_manifest() -> None:
    assert cluster_role_rules(parse(helm_template(include_crds=False))) == RBAC_RULES, (
        "the rules in charts/kappa-operator/templates/_helpers.tpl differ from manifests/10-rbac.yaml's"
    )


def test_the_kustomize_base_renders_every_object_of_an_install() -> None:
    kinds = sorted(o["kind"] for o in parse(kustomize()))
    assert kinds == sorted(
        ["CustomResourceDefinition"] * 3
        + ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
        + ["Deployment", "PodDisruptionBudget"]
    )


def test_the_monitoring_component_scrapes_with_honor_labels_and_ships_the_alerts() -> None:
    objs = by_key(parse(kustomize("components/monitoring")))
    service = objs[("v1", "Service", NAMESPACE, "kappa-operator")]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    monitor = objs[("monitoring.coreos.com/v1", "ServiceMonitor", NAMESPACE, "kappa-operator")]
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "honorLabels": True}]
    assert monitor["spec"]["selector"]["matchLabels"] == service["metadata"]["labels"]
    rule = objs[("monitoring.coreos.com/v1", "PrometheusRule", NAMESPACE, "kappa-operator")]
    assert rule == yaml.safe_load((MANIFESTS / "monitoring" / "prometheusrule.yaml").read_text())


def test_the_charts_alerting_rules_are_the_rendered_ones() -> None:
    """The chart cannot read files outside itself: it holds a copy of the PrometheusRule."""
    source = MANIFESTS / "monitoring" / "prometheusrule.yaml"
    assert (CHART / "files" / "prometheusrule.yaml").read_text() == source.read_text(), (
        "cp manifests/monitoring/prometheusrule.yaml charts/kappa-operator/files/"
    )


def test_watching_a_list_of_namespaces_grants_the_same_rules_per_namespace() -> None:
    objs = parse(helm_template(*NAMESPACED, include_crds=False))
    roles = {o["metadata"]["namespace"]: o["rules"] for o in objs if o["kind"] == "Role"}
    bindings = {o["metadata"]["namespace"]: o for o in objs if o["kind"] == "RoleBinding"}
    cluster_rules = [r for r in RBAC_RULES if "apiextensions.k8s.io" in r["apiGroups"]]
    namespaced_rules = [r for r in RBAC_RULES if r not in cluster_rules]
    leader = [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}
    ]
    assert roles == {
        "team-a": namespaced_rules,
        "team-b": namespaced_rules,
        "kafka": namespaced_rules,
        NAMESPACE: leader,
    }
    for ns, binding in bindings.items():
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "kappa-operator", "namespace": NAMESPACE}
        ]
        assert binding["roleRef"]["name"] == (
            "kappa-operator-leader-election" if ns == NAMESPACE else "kappa-operator"
        )
    # What stays cluster-wide: reading CRDs (Kopf's discovery), namespaces (Kopf sees a watched one appear).
    assert cluster_role_rules(objs) == [
        *cluster_rules,
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    ]
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]


def test_the_values_a_user_sets_reach_the_deployment() -> None:
    objs = parse(
        helm_template(
            "image.repository=registry.example/kappa-operator",
            "image.tag=0.1.1",
            "image.pullPolicy=Always",
            "replicas=1",
            "logFormat=full",
            "leaderElection.leaseDuration=30",
            "resources.limits.memory=1Gi",
            "nodeSelector.pool=operators",
            "tolerations[0].key=dedicated",
            "tolerations[0].operator=Exists",
            include_crds=False,
        )
    )
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 1
    assert (container["image"], container["imagePullPolicy"]) == (
        "registry.example/kappa-operator:0.1.1",
        "Always",
    )
    assert {"--log-format=full", "--leader-election=kappa-operator", "--lease-duration=30"} <= set(
        container["args"]
    )
    assert container["resources"]["limits"]["memory"] == "1Gi"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # ... with /tmp writable, without which the operator cannot start (docs/install.md, the image).
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["nodeSelector"] == {"pool": "operators"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    # One replica: no PodDisruptionBudget, which would forbid every eviction.
    assert "PodDisruptionBudget" not in {o["kind"] for o in objs}
    for obj in objs:
        assert set(HELM_ONLY_LABELS) <= set(obj["metadata"]["labels"]), obj["kind"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("replicas=3,leaderElection.enabled=false", "replicas > 1 needs leaderElection.enabled"),
        ("imag.tag=0.1.0", "additional properties 'imag' not allowed"),
        ("logFormat=text", "/logFormat"),
        ("watchNamespaces={Team_A}", "/watchNamespaces/0"),
    ],
)
def test_the_chart_refuses_values_that_cannot_work(value: str, message: str) -> None:
    proc = run(helm(), "template", "kappa-operator", str(CHART), "--set", value)
    assert proc.returncode != 0
    assert message in proc.stderr
