"""spec.flink's pass-through fields against the real API server: each rendered FlinkDeployment is accepted
by FKO's own CRD (1.10.0, testbed/upstream-crds) in a server-side apply dry run, which refuses a field in a
place FKO does not have; a StreamJob using them all is accepted and explained; and the FKO double runs such a
FlinkDeployment.

Why a dry run rather than a JSON-schema validator in a unit test: the API server is what will judge the
FlinkDeployment, the operator's own server-side apply, with the structural-schema rules (int-or-string,
preserve-unknown-fields, fields not declared) that a generic validator would only approximate; and it needs
no new dependency."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from kappa.api.streamjob import StreamJobSpec
from kappa.render.flink import flink_deployment, injection_for
from tests.doubles.fko import FakeFlinkOperator
from tests.integration.testbed import ROOT, Kubectl
from tests.unit.test_render_passthrough import BASE, CASES, all_fields

EXAMPLE = ROOT / "examples" / "08-streamjob-flink-passthrough.yaml"


def rendered(namespace: str, name: str, **flink: Any) -> dict[str, Any]:
    spec = StreamJobSpec.model_validate(
        {
            **BASE,
            "flink": {
                "image": "flink:2.0",
                **({} if "jarURI" in flink else {"sql": ["SELECT 1"]}),
                "flinkConfiguration": {
                    "state.checkpoints.dir": "file:///tmp/cp",
                    "state.savepoints.dir": "file:///tmp/sp",
                    **flink.pop("flinkConfiguration", {}),
                },
                **flink,
            },
        }
    )
    injection = injection_for(
        namespace, name, spec, "v2", bootstrap_servers="k:9092", startup_mode="earliest-offset"
    )
    fd = flink_deployment(namespace=namespace, job=name, owner_uid="u1", spec=spec, injection=injection)
    fd["metadata"].pop("ownerReferences")  # no StreamJob behind these
    return fd


def dry_run(kubectl: Kubectl, fd: dict[str, Any]) -> Any:
    return kubectl.run(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        "--field-manager=kappa-operator",
        "-f",
        "-",
        input=json.dumps(fd),
        check=False,
    )


@pytest.mark.usefixtures("upstream_crds")
def test_fkos_crd_accepts_every_rendered_field(kubectl: Kubectl, namespace: str) -> None:
    example = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == "StreamJob")
    cases = [
        *((name, fields) for name, fields, _, _ in CASES),
        ("all-fields", all_fields()),
        (EXAMPLE.name, example["spec"]["flink"]),
    ]
    refused = {}
    for i, (name, fields) in enumerate(cases):
        result = dry_run(kubectl, rendered(namespace, f"job{i}", **json.loads(json.dumps(fields))))
        if result.returncode != 0:
            refused[name] = result.stderr.strip()
    assert not refused, refused


@pytest.mark.usefixtures("upstream_crds")
@pytest.mark.parametrize(
    ("misplaced", "field"),
    [
        (lambda spec: spec.__setitem__("env", [{"name": "A", "value": "1"}]), "spec.env"),
        (lambda spec: spec["jobManager"].__setitem__("env", []), "spec.jobManager.env"),
        (lambda spec: spec["job"].__setitem__("highAvailability", {}), "spec.job.highAvailability"),
    ],
    ids=["env-beside-the-template", "env-in-the-jobmanager", "ha-in-the-job"],
)
def test_a_field_where_fko_has_none_is_refused(
    kubectl: Kubectl, namespace: str, misplaced: Any, field: str
) -> None:
    """The check above can fail: FKO's CRD refuses what a wrong render would put in the wrong place."""
    fd = rendered(namespace, "wrong")
    misplaced(fd["spec"])
    result = dry_run(kubectl, fd)
    assert result.returncode != 0
    # Server-side apply, as the operator's own, refuses any field its typed schema lacks.
    assert f".{field}: field not declared in schema" in result.stderr, result.stderr


def streamjob(name: str, **flink: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kappa.dev/v1alpha1",
        "kind": "StreamJob",
        "metadata": {"name": name},
        "spec": {**BASE, "flink": {"image": "flink:2.0", "sql": ["SELECT 1"], **flink}},
    }


def test_the_example_is_accepted(kubectl: Kubectl) -> None:
    result = kubectl.run("apply", "--dry-run=server", "-f", str(EXAMPLE), check=False)
    assert result.returncode == 0, result.stderr


def test_a_streamjob_with_every_field_is_accepted_as_written(kubectl: Kubectl) -> None:
    kubectl.apply(streamjob("everything", **all_fields()))
    stored = json.loads(kubectl("get", "streamjob", "everything", "-o", "json"))["spec"]["flink"]
    for key, value in all_fields().items():
        if key in ("jobManager", "taskManager"):
            assert stored[key]["podTemplate"] == value["podTemplate"], key
        else:
            assert stored[key] == value, key


SESSION_REFUSES = {
    "podTemplate": {"podTemplate": {"spec": {"nodeSelector": {"pool": "flink"}}}},
    "jobManager.podTemplate": {"jobManager": {"podTemplate": {"spec": {}}}},
    "taskManager.podTemplate": {"taskManager": {"podTemplate": {"spec": {}}}},
    "env": {"env": [{"name": "MODE", "value": "prod"}]},
    "envFrom": {"envFrom": [{"secretRef": {"name": "s3"}}]},
    "logConfiguration": {"logConfiguration": {"log4j-console.properties": "rootLogger.level = WARN"}},
    "highAvailability": {"highAvailability": {"storageDir": "s3://bucket/ha"}},
}


def test_a_session_runtime_refuses_each_pod_shaping_field(kubectl: Kubectl) -> None:
    """Every branch of the one Session rule (admission case 87 has its message); allowNonRestoredState and
    empty lists are fine, since the session runtime passes the first to Flink's REST API."""

    def on_session(**flink: Any) -> Any:
        job = streamjob("sess", **flink)
        job["spec"]["runtime"] = {"type": "Session"}
        return kubectl.run("apply", "--dry-run=server", "-f", "-", input=json.dumps(job), check=False)

    accepted = {f: on_session(**fields).returncode == 0 for f, fields in SESSION_REFUSES.items()}
    assert not any(accepted.values()), accepted
    fine = on_session(allowNonRestoredState=True, env=[], envFrom=[], logConfiguration={})
    assert fine.returncode == 0, fine.stderr


EXPLAINED = [
    "podTemplate",
    "podTemplate.spec",
    "jobManager.podTemplate",
    "taskManager.podTemplate",
    "env",
    "env.valueFrom.secretKeyRef",
    "envFrom",
    "logConfiguration",
    "highAvailability.storageDir",
    "allowNonRestoredState",
]


def test_kubectl_explain_describes_each_field(kubectl: Kubectl) -> None:
    bare = {}
    for path in EXPLAINED:
        out = kubectl("explain", f"streamjob.spec.flink.{path}")
        description = out.split("DESCRIPTION:", 1)[1].strip()
        if len(description.split()) < 4:  # a sentence, not a bare type
            bare[path] = out
    assert not bare, bare


def test_the_fko_double_runs_a_deployment_with_every_field(
    kubectl: Kubectl, namespace: str, fko: FakeFlinkOperator
) -> None:
    fd = rendered(namespace, "everything", **all_fields())
    kubectl.run(
        "apply", "--server-side", "--field-manager=kappa-operator", "-f", "-", input=yaml.safe_dump(fd)
    )
    name = fd["metadata"]["name"]
    kubectl.wait_for(
        "flinkdeployment",
        name,
        lambda o: (o.get("status") or {}).get("jobStatus", {}).get("state") == "RUNNING",
        timeout=30,
        what="the job to run",
    )
    got = kubectl.get("flinkdeployment", name)
    reconciled = json.loads(got["status"]["reconciliationStatus"]["lastReconciledSpec"])["spec"]
    assert reconciled["podTemplate"] == fd["spec"]["podTemplate"]
    assert reconciled["job"]["allowNonRestoredState"] is True
