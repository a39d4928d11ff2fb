"""Installing, against the test bed's real API server: the README's own `kubectl apply -k manifests/`, and
the Helm chart rendered by `helm template` and sent through `kubectl apply --dry-run=server` (the API server
validates and admits every object, and stores none), for all namespaces and for a list of them; and the
operator itself under the chart's RBAC for a list of namespaces.

The test bed has no kubelet: the Deployment's pods never run; what is checked is that the API server takes
every object. The ServiceMonitor and PrometheusRule are validated against the Prometheus Operator's CRDs,
generated from its Go API module (testbed/build-prometheus-crds.sh); the alerting rules themselves by promtool
(test_monitoring.py)."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.install import NAMESPACE, ROOT, helm_template, key, kustomize, parse, run
from tests.integration.conftest import free_port
from tests.integration.testbed import Kubectl, OperatorProcess, conditions

README_COMMAND = "kubectl apply -k manifests/"
# The API server's refusal, as the operator logs it: `... cannot list resource "x" in API group "g" at the
# cluster scope` (quotes escaped once or twice in a JSON log line).
REFUSAL = re.compile(
    r"cannot (\w+) resource \W*([\w/]+)\W* in API group \W*([\w.]*)\W* (at the cluster scope|in the)"
)
MONITORING_GROUP = "monitoring.coreos.com"


@pytest.fixture(scope="module")
def prometheus_crds(admin: Kubectl, crds: list[str]) -> list[str]:
    """The Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, generated from its Go API module by
    testbed/build-prometheus-crds.sh (cached), applied server-side: the dry-runs then validate the chart's and
    the component's against their schemas."""
    build = run("bash", str(ROOT / "testbed" / "build-prometheus-crds.sh"))
    if build.returncode != 0:
        reason = f"the Prometheus Operator's CRDs could not be generated: {build.stderr[-800:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    directory = Path(build.stdout.strip().splitlines()[-1])
    files = [
        directory / f"{MONITORING_GROUP}_{plural}.yaml" for plural in ("servicemonitors", "prometheusrules")
    ]
    admin(
        "apply",
        "--server-side",
        "--field-manager=kappa-testbed",
        "--force-conflicts",
        *[f"-f={f}" for f in files],
    )
    names = [f"crd/{plural}.{MONITORING_GROUP}" for plural in ("servicemonitors", "prometheusrules")]
    admin("wait", "--for=condition=Established", "--timeout=60s", *names)
    return names


def _resource(obj: dict[str, Any]) -> str:
    """kind.group, as `kubectl get` takes it: Deployment.apps, ClusterRole.rbac.authorization.k8s.io."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind']}.{group}" if group else obj["kind"]


def test_the_readme_install_command_installs_every_object(admin: Kubectl, crds: list[str]) -> None:
    """Exactly the README's command, from the repository's root, as a user runs it. The namespace, RBAC and
    CRDs are the test bed's own too (it applies them server-side as `kappa-install`, which takes its fields
    back with --force-conflicts); the Deployment and its PodDisruptionBudget are removed afterwards."""
    assert README_COMMAND in (ROOT / "README.md").read_text()
    expected = parse(kustomize())
    try:
        kubectl, *args = README_COMMAND.split()
        applied = run(kubectl, "--kubeconfig", str(admin.kubeconfig), *args)
        assert applied.returncode == 0, applied.stderr
        # Every object is in kappa-system or cluster-scoped: one GET of them all.
        names = [f"{_resource(obj)}/{obj['metadata']['name']}" for obj in expected]
        got = json.loads(admin("-n", NAMESPACE, "get", *names, "-o", "json"))["items"]
        assert sorted(key(o) for o in got) == sorted(key(o) for o in expected)
        deployment = admin.in_namespace(NAMESPACE).get("deployment.apps", "kappa-operator")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "kappa-operator"
    finally:
        admin.run(
            "-n",
            NAMESPACE,
            "delete",
            "deployment.apps/kappa-operator",
            "poddisruptionbudget.policy/kappa-operator",
            "--ignore-not-found",
            "--wait=false",
            check=False,
        )


@pytest.fixture
def watched(admin: Kubectl, crds: list[str]) -> Iterator[list[str]]:
    """Two namespaces to watch and one where a Strimzi Kafka would live: a namespaced Role goes into each."""
    names = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for name in names:
        admin("create", "namespace", name)
    yield names
    for name in names:
        admin.run("delete", "namespace", name, "--wait=false", check=False)


def _server_dry_run(admin: Kubectl, objs: list[dict[str, Any]]) -> list[str]:
    text = yaml.safe_dump_all(objs)
    proc = admin.run("apply", "--dry-run=server", "-f", "-", input=text, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line.strip()]


def test_helm_template_is_admitted_by_the_api_server_for_all_namespaces(
    admin: Kubectl, prometheus_crds: list[str]
) -> None:
    values = ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true")
    objs = parse(helm_template(*values, include_crds=False))
    lines = _server_dry_run(admin, objs)
    assert len(lines) == len(objs)
    assert all(line.endswith("(server dry run)") for line in lines), lines
    for resource in (
        "clusterrole.rbac.authorization.k8s.io",
        "servicemonitor.monitoring.coreos.com",
        "prometheusrule.monitoring.coreos.com",
        "deployment.apps",
    ):
        assert any(line.startswith(f"{resource}/kappa-operator ") for line in lines), (resource, lines)


def test_helm_template_is_admitted_by_the_api_server_for_a_list_of_namespaces(
    admin: Kubectl, watched: list[str]
) -> None:
    team_a, team_b, kafka = watched
    values = (f"watchNamespaces={{{team_a},{team_b}}}", f"rbac.extraNamespaces={{{kafka}}}")
    objs = parse(helm_template(*values, include_crds=False))
    lines = _server_dry_run(admin, objs)
    assert len(lines) == len(objs)
    assert all(line.endswith("(server dry run)") for line in lines), lines
    # A Role and a RoleBinding kappa-operator in each namespace (and the leader election's in kappa-system).
    assert sorted(
        o["metadata"]["namespace"] for o in objs if key(o)[1:4:2] == ("Role", "kappa-operator")
    ) == sorted(watched)
    assert lines.count("role.rbac.authorization.k8s.io/kappa-operator created (server dry run)") == len(
        watched
    )


def test_a_role_in_a_namespace_that_does_not_exist_is_refused(admin: Kubectl, crds: list[str]) -> None:
    """The server dry-run is a real admission: a watched namespace that does not exist fails the install."""
    missing = f"t-missing-{uuid.uuid4().hex[:8]}"
    objs = [
        o
        for o in parse(helm_template(f"watchNamespaces={{{missing}}}", include_crds=False))
        if o["kind"] in ("Role", "RoleBinding")
    ]
    proc = admin.run("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objs), check=False)
    assert proc.returncode != 0
    assert f'namespaces "{missing}" not found' in proc.stderr


def test_the_kustomize_monitoring_component_is_admitted_by_the_api_server(
    admin: Kubectl, prometheus_crds: list[str]
) -> None:
    """What the component adds to the base (the README's test applies the base itself)."""
    base = {key(o) for o in parse(kustomize())}
    added = [o for o in parse(kustomize("components/monitoring")) if key(o) not in base]
    assert sorted(o["kind"] for o in added) == ["PrometheusRule", "Service", "ServiceMonitor"]
    lines = _server_dry_run(admin, added)
    assert sorted(lines) == [
        "prometheusrule.monitoring.coreos.com/kappa-operator created (server dry run)",
        "service/kappa-operator created (server dry run)",
        "servicemonitor.monitoring.coreos.com/kappa-operator created (server dry run)",
    ]


def _kubeconfig_for(admin: Kubectl, namespace: str, service_account: str, out: Path) -> Path:
    """A kubeconfig with a token of this ServiceAccount, its context in its namespace (the operator's own,
    where the leader election's Lease goes), as a pod would see it."""
    token = admin("-n", namespace, "create", "token", service_account, "--duration=1h").strip()
    cluster = json.loads(admin("config", "view", "--minify", "--raw", "-o", "json"))["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testbed", "cluster": cluster["cluster"]}],
        "users": [{"name": service_account, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "testbed", "user": service_account, "namespace": namespace}}
        ],
        "current-context": "sa",
    }
    out.write_text(yaml.safe_dump(config))
    out.chmod(0o600)
    return out


def test_the_operator_works_under_the_charts_rbac_for_a_list_of_namespaces(
    admin: Kubectl, watched: list[str], tmp_path: Path
) -> None:
    """The chart installed in its own namespace to watch one namespace (the RBAC objects applied for real,
    the ClusterRole and its binding renamed so as not to replace the test bed's), and `kappa run` with the
    chart's arguments under that ServiceAccount's token: it takes the Lease, sees a MaterializedView in the
    watched namespace, reads the Secret it names (missing: 404, not 403) and writes its status; its log has
    no refusal."""
    release, team, _ = watched
    cluster_name = f"kappa-operator-{release}"
    objs = parse(helm_template(f"watchNamespaces={{{team}}}", include_crds=False, namespace=release))
    rbac = []
    for obj in objs:
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            obj["metadata"]["name"] = cluster_name
        if obj["kind"] == "ClusterRoleBinding":
            obj["roleRef"]["name"] = cluster_name
        if obj["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            rbac.append(obj)
    (deployment,) = [o for o in objs if o["kind"] == "Deployment"]
    args = [
        a
        for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        if a.startswith(("--leader-election=", "--namespace=", "--log-format="))
    ]
    assert f"--namespace={team}" in args
    try:
        admin("apply", "-f", "-", input=yaml.safe_dump_all(rbac))
        kubeconfig = _kubeconfig_for(admin, release, "kappa-operator", tmp_path / "operator.kubeconfig")
        operator = OperatorProcess(
            kubeconfig,
            tmp_path / "operator.log",
            health_port=free_port(),
            metrics_port=free_port(),
            args=args,
        )
        operator.start()
        try:
            kubectl = admin.in_namespace(team)
            kubectl.apply(
                {
                    "apiVersion": "kappa.dev/v1alpha1",
                    "kind": "StreamJob",
                    "metadata": {"name": "orders"},
                    "spec": {
                        "version": "v1",
                        "source": {"kafka": {"bootstrapServers": "127.0.0.1:1"}, "topics": ["orders"]},
                        "output": {"table": {"base": "orders"}, "view": "orders"},
                        "flink": {"image": "img:1", "flinkVersion": "v1_20", "sql": ["SELECT 1"]},
                    },
                }
            )
            kubectl.apply(
                {
                    "apiVersion": "kappa.dev/v1alpha1",
                    "kind": "MaterializedView",
                    "metadata": {"name": "orders"},
                    "spec": {
                        "backend": {
                            "type": "postgres",
                            "postgres": {"secretRef": {"name": "no-such-secret"}, "view": "orders"},
                        }
                    },
                }
            )
            view = kubectl.wait_for(
                "mv",
                "orders",
                lambda o: conditions(o).get("Stalled", {}).get("status") == "True",
                timeout=60,
                what="Stalled",
            )
            stalled = conditions(view)["Stalled"]
            assert stalled["reason"] == "BackendUnavailable"
            assert "no-such-secret" in stalled["message"] and "forbidden" not in stalled["message"].lower()
            lease = admin.in_namespace(release).get("lease.coordination.k8s.io", "kappa-operator")
            assert lease["spec"]["holderIdentity"]
            # The views' resync runs every interval (--reconcile-interval 1): a few rounds, each of which
            # listed MaterializedViews cluster-wide (refused) before it read them from its watch-fed index.
            time.sleep(4)
        finally:
            operator.stop()
        log = (tmp_path / "operator.log").read_text()
        refused = set(REFUSAL.findall(log))
        assert "Not enough permissions" not in log  # Kopf's word for a refused list or watch of its own
        assert not refused, f"refused: {refused}; log:\n{log[-3000:]}"
    finally:
        admin.run(
            "delete",
            f"clusterrolebinding.rbac.authorization.k8s.io/{cluster_name}",
            f"clusterrole.rbac.authorization.k8s.io/{cluster_name}",
            "--ignore-not-found",
            check=False,
        )
