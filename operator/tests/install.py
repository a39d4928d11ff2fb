"""The two ways to install the operator, rendered as a user renders them: `kubectl kustomize` on the
kustomize base (manifests/, with its components) and `helm template` on the chart (charts/kappa-operator),
both parsed into objects. Helm is built from its Go module by testbed/build-helm.sh into the cache."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
CHART = ROOT / "charts" / "kappa-operator"
CACHE = Path(os.environ.get("KAPPA_CACHE") or Path.home() / ".cache" / "kappa-operator")
NAMESPACE = "kappa-system"
# Labels the chart adds to each object's metadata that a kustomize base has no value for: the chart's name and
# version, the tool (Helm), and the release's name (helm.sh/chart, app.kubernetes.io/managed-by,
# app.kubernetes.io/instance, Helm's recommended labels). They are in no selector; the comparison drops them.
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance")

Obj = dict[str, Any]
Key = tuple[str, str, str, str]


@functools.cache
def helm() -> str:
    """The cached helm binary; `make test` builds it first (a cold cache takes minutes)."""
    tool = CACHE / "bin" / "helm"
    if not tool.exists():
        build = subprocess.run(
            ["bash", str(ROOT / "testbed" / "build-helm.sh")], capture_output=True, text=True
        )
        if build.returncode != 0 or not tool.exists():
            reason = f"helm could not be built: {(build.stderr or build.stdout)[-800:]}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
    return str(tool)


def run(*args: str, cwd: Path = ROOT, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, input=input, capture_output=True, text=True, timeout=120)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{' '.join(proc.args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def parse(text: str) -> list[Obj]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: the CRDs are large
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]


@functools.cache
def helm_template(*values: str, include_crds: bool = True, namespace: str = NAMESPACE) -> str:
    """`helm template` as an install in kappa-system (or `namespace`) renders it; values as `--set`."""
    args = [helm(), "template", "kappa-operator", str(CHART), "--namespace", namespace]
    if include_crds:
        args.append("--include-crds")
    for value in values:
        args += ["--set", value]
    return ok(run(*args))


@functools.cache
def kustomize(*components: str) -> str:
    """`kubectl kustomize manifests/`, or an overlay of it with these components (paths under manifests/), as
    a user writes one: `resources: [the base]`, `components: [...]`."""
    if not components:
        return ok(run("kubectl", "kustomize", "manifests/"))
    with tempfile.TemporaryDirectory(prefix="kappa-overlay-") as overlay:
        rel = os.path.relpath(MANIFESTS, overlay)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [rel],
            "components": [f"{rel}/{c}" for c in components],
        }
        (Path(overlay) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return ok(run("kubectl", "kustomize", overlay))


def key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def by_key(objs: Iterable[Obj]) -> dict[Key, Obj]:
    out: dict[Key, Obj] = {}
    for obj in objs:
        assert key(obj) not in out, f"{key(obj)} rendered twice"
        out[key(obj)] = obj
    return out


def without_helm_labels(obj: Obj) -> Obj:
    labels = obj["metadata"].get("labels") or {}
    for label in HELM_ONLY_LABELS:
        labels.pop(label, None)
    return obj


def cluster_role_rules(objs: Iterable[Obj]) -> list[Obj]:
    (role,) = [o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "kappa-operator"]
    return list(role["rules"])
