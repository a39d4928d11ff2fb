"""spec.flink's pass-through fields land where FKO reads them in the FlinkDeployment, and a spec that uses
none of them renders exactly as before they existed. tests/integration/test_flink_passthrough.py sends the
same renders to the API server with FKO's CRD (a server-side dry run, strict field validation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kappa.api.flink import PODS_ONLY
from kappa.api.streamjob import StreamJobSpec
from kappa.render.flink import flink_deployment, injection_for
from kappa.render.passthrough import MERGE_ARRAYS_BY_NAME, set_pod_fields

MAIN = "flink-main-container"
BEFORE = Path(__file__).parent / "testdata" / "flink_deployment_before_passthrough.json"
BASE: dict[str, Any] = {
    "version": "v2",
    "source": {"kafka": {"bootstrapServers": "k:9092"}, "topics": ["clicks"]},
    "output": {"topic": {"base": "sessions"}},
}
SECRET_ENV = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
SIDECAR = {"name": "log-shipper", "image": "fluent-bit:3", "env": [{"name": "LEVEL", "value": "info"}]}


def render(**flink: Any) -> dict[str, Any]:
    spec = StreamJobSpec.model_validate({**BASE, "flink": {"image": "img:1", "sql": ["SELECT 1"], **flink}})
    injection = injection_for(
        "shop", "sessionizer", spec, "v2", bootstrap_servers="k:9092", startup_mode="earliest-offset"
    )
    return flink_deployment(
        namespace="shop", job="sessionizer", owner_uid="u1", spec=spec, injection=injection
    )


def containers(template: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in ((template or {}).get("spec") or {}).get("containers") or []}


def main_env(fd: dict[str, Any]) -> list[dict[str, Any]]:
    return containers(fd["spec"].get("podTemplate")).get(MAIN, {}).get("env") or []


# (case, spec.flink fields, what the FlinkDeployment shows, expected)
CASES: list[tuple[str, dict[str, Any], Any, Any]] = [
    (
        "env-from-a-secret-in-flinks-container",
        {"env": [SECRET_ENV, {"name": "MODE", "value": "prod"}]},
        lambda fd: fd["spec"]["podTemplate"],
        {"spec": {"containers": [{"name": MAIN, "env": [SECRET_ENV, {"name": "MODE", "value": "prod"}]}]}},
    ),
    (
        "env-from-a-configmap-and-a-pod-field",
        {
            "env": [
                {"name": "REGION", "valueFrom": {"configMapKeyRef": {"name": "site", "key": "region"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            ]
        },
        lambda fd: [(e["name"], sorted(e["valueFrom"])) for e in main_env(fd)],
        [("REGION", ["configMapKeyRef"]), ("POD_IP", ["fieldRef"])],
    ),
    (
        "env-merges-into-the-templates-flink-container-by-name",
        {
            "podTemplate": {
                "spec": {
                    "containers": [
                        SIDECAR,
                        {
                            "name": MAIN,
                            "env": [{"name": "A", "value": "1"}, {"name": "MODE", "value": "dev"}],
                        },
                    ]
                }
            },
            "env": [{"name": "MODE", "value": "prod"}],
        },
        lambda fd: (containers(fd["spec"]["podTemplate"])["log-shipper"], main_env(fd)),
        (SIDECAR, [{"name": "A", "value": "1"}, {"name": "MODE", "value": "prod"}]),
    ),
    (
        "flinks-container-is-added-after-the-templates-own",
        {"podTemplate": {"spec": {"containers": [SIDECAR]}}, "env": [SECRET_ENV]},
        lambda fd: fd["spec"]["podTemplate"]["spec"]["containers"],
        [SIDECAR, {"name": MAIN, "env": [SECRET_ENV]}],
    ),
    (
        "env-from-after-the-templates-own",
        {
            "podTemplate": {
                "spec": {"containers": [{"name": MAIN, "envFrom": [{"configMapRef": {"name": "a"}}]}]}
            },
            "envFrom": [{"secretRef": {"name": "s3-credentials"}, "prefix": "AWS_"}],
        },
        lambda fd: containers(fd["spec"]["podTemplate"])[MAIN]["envFrom"],
        [{"configMapRef": {"name": "a"}}, {"prefix": "AWS_", "secretRef": {"name": "s3-credentials"}}],
    ),
    (
        "a-pod-template-passes-through-unchanged",
        {
            "podTemplate": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"labels": {"team": "growth"}},
                "spec": {"nodeSelector": {"pool": "flink"}, "containers": [SIDECAR]},
            }
        },
        lambda fd: fd["spec"]["podTemplate"],
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"labels": {"team": "growth"}},
            "spec": {"nodeSelector": {"pool": "flink"}, "containers": [SIDECAR]},
        },
    ),
    (
        "job-and-task-manager-templates-in-their-components",
        {
            "jobManager": {"podTemplate": {"metadata": {"labels": {"role": "jm"}}}},
            "taskManager": {"replicas": 2, "podTemplate": {"spec": {"priorityClassName": "batch"}}},
        },
        lambda fd: (
            fd["spec"]["jobManager"]["podTemplate"],
            fd["spec"]["taskManager"]["podTemplate"],
            fd["spec"]["taskManager"]["replicas"],
            "podTemplate" in fd["spec"],
            MERGE_ARRAYS_BY_NAME in fd["spec"]["flinkConfiguration"],
        ),
        ({"metadata": {"labels": {"role": "jm"}}}, {"spec": {"priorityClassName": "batch"}}, 2, False, False),
    ),
    (
        "env-with-a-component-template-merges-lists-by-name",
        {"env": [SECRET_ENV], "taskManager": {"podTemplate": {"spec": {"containers": [SIDECAR]}}}},
        lambda fd: fd["spec"]["flinkConfiguration"].get(MERGE_ARRAYS_BY_NAME),
        "true",
    ),
    (
        "a-users-own-merge-setting-is-kept",
        {
            "env": [SECRET_ENV],
            "jobManager": {"podTemplate": {"spec": {}}},
            "flinkConfiguration": {MERGE_ARRAYS_BY_NAME: "false"},
        },
        lambda fd: fd["spec"]["flinkConfiguration"][MERGE_ARRAYS_BY_NAME],
        "false",
    ),
    (
        "log-configuration",
        {"logConfiguration": {"log4j-console.properties": "rootLogger.level = WARN\n"}},
        lambda fd: fd["spec"]["logConfiguration"],
        {"log4j-console.properties": "rootLogger.level = WARN\n"},
    ),
    (
        "high-availability-on-flink-2",
        {"highAvailability": {"storageDir": "s3://bucket/flink/ha"}},
        lambda fd: {k: v for k, v in fd["spec"]["flinkConfiguration"].items() if k.startswith("high-avail")},
        {"high-availability.type": "kubernetes", "high-availability.storageDir": "s3://bucket/flink/ha"},
    ),
    (
        "high-availability-before-flink-1-17-uses-the-old-key",
        {"flinkVersion": "v1_16", "highAvailability": {"storageDir": "file:///flink-data/ha"}},
        lambda fd: {k: v for k, v in fd["spec"]["flinkConfiguration"].items() if k.startswith("high-avail")},
        {"high-availability": "kubernetes", "high-availability.storageDir": "file:///flink-data/ha"},
    ),
    (
        "allow-non-restored-state",
        {"allowNonRestoredState": True},
        lambda fd: fd["spec"]["job"].get("allowNonRestoredState"),
        True,
    ),
    (
        "allow-non-restored-state-false-is-left-to-fkos-default",
        {"allowNonRestoredState": False},
        lambda fd: "allowNonRestoredState" in fd["spec"]["job"],
        False,
    ),
]


@pytest.mark.parametrize(("fields", "shown", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_field_lands_where_fko_reads_it(fields: dict[str, Any], shown: Any, expected: Any) -> None:
    assert shown(render(**fields)) == expected


def test_env_goes_into_flinks_container_only() -> None:
    fd = render(
        podTemplate={"spec": {"containers": [SIDECAR]}},
        env=[SECRET_ENV],
        envFrom=[{"secretRef": {"name": "s"}}],
    )
    by_name = containers(fd["spec"]["podTemplate"])
    assert by_name["log-shipper"] == SIDECAR  # the sidecar gets nothing of ours
    assert by_name[MAIN]["env"] == [SECRET_ENV]
    assert by_name[MAIN]["envFrom"] == [{"secretRef": {"name": "s"}}]


def test_the_users_template_is_not_changed() -> None:
    template = {"spec": {"containers": [{"name": MAIN, "env": [{"name": "MODE", "value": "dev"}]}]}}
    spec = StreamJobSpec.model_validate(
        {**BASE, "flink": {"image": "i", "sql": ["SELECT 1"], "podTemplate": template, "env": [SECRET_ENV]}}
    )
    injection = injection_for(
        "shop", "j", spec, "v2", bootstrap_servers="k:9092", startup_mode="earliest-offset"
    )
    flink_deployment(namespace="shop", job="j", owner_uid="u", spec=spec, injection=injection)
    assert spec.flink.pod_template is not None
    assert spec.flink.pod_template.wire() == template  # a second render must not find our env already there


def _golden() -> list[tuple[str, dict[str, Any]]]:
    return list(json.loads(BEFORE.read_text()).items())


@pytest.mark.parametrize(("case", "before"), _golden(), ids=[k for k, _ in _golden()])
@pytest.mark.parametrize(
    "stored",
    [
        {},
        # What the API server returns for the same object once the new CRD defaults it, and a user's empties.
        {"allowNonRestoredState": False},
        {"allowNonRestoredState": False, "env": [], "envFrom": [], "logConfiguration": {}},
    ],
    ids=["as-written", "defaulted", "empties"],
)
def test_a_spec_without_the_new_fields_renders_byte_for_byte_as_before(
    case: str, before: dict[str, Any], stored: dict[str, Any]
) -> None:
    """A changed render would be a spec change to FKO: every running job would be upgraded."""
    raw = before["spec"]
    spec = StreamJobSpec.model_validate({**raw, "flink": {**raw["flink"], **stored}})
    injection = injection_for(
        "shop", "sessionizer", spec, "v2", bootstrap_servers="k:9092", startup_mode="earliest-offset"
    )
    fd = flink_deployment(
        namespace="shop",
        job="sessionizer",
        owner_uid="u1",
        spec=spec,
        injection=injection,
        state=before["state"],
        initial_savepoint_path=before["initialSavepointPath"],
    )
    assert json.dumps(fd) == before["rendered"], case


def all_fields() -> dict[str, Any]:
    """Every pass-through field at once: what the integration test sends to FKO's CRD and its double."""
    return {
        "podTemplate": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"labels": {"team": "growth"}},
            "spec": {
                "containers": [
                    SIDECAR,
                    {"name": MAIN, "volumeMounts": [{"name": "ha", "mountPath": "/flink-data"}]},
                ],
                "volumes": [{"name": "ha", "persistentVolumeClaim": {"claimName": "flink-ha"}}],
            },
        },
        "jobManager": {"podTemplate": {"metadata": {"annotations": {"a": "b"}}}},
        "taskManager": {"podTemplate": {"spec": {"priorityClassName": "batch"}}},
        "env": [
            SECRET_ENV,
            {"name": "ENABLE_BUILT_IN_PLUGINS", "value": "flink-s3-fs-presto-2.0.0.jar"},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
        "envFrom": [{"secretRef": {"name": "s3-credentials"}, "prefix": "AWS_"}],
        "logConfiguration": {"log4j-console.properties": "rootLogger.level = INFO\n"},
        "highAvailability": {"storageDir": "file:///flink-data/ha"},
        "allowNonRestoredState": True,
    }


def test_every_field_at_once() -> None:
    fd = render(**all_fields())
    spec = fd["spec"]
    assert [e["name"] for e in main_env(fd)] == ["DB_PASSWORD", "ENABLE_BUILT_IN_PLUGINS", "MEM"]
    assert containers(spec["podTemplate"])[MAIN]["volumeMounts"] == [
        {"name": "ha", "mountPath": "/flink-data"}
    ]
    assert spec["jobManager"]["podTemplate"] == {"metadata": {"annotations": {"a": "b"}}}
    assert spec["flinkConfiguration"][MERGE_ARRAYS_BY_NAME] == "true"
    assert spec["flinkConfiguration"]["high-availability.storageDir"] == "file:///flink-data/ha"
    assert spec["job"]["allowNonRestoredState"] is True
    assert set(spec["logConfiguration"]) == {"log4j-console.properties"}


def test_the_pod_fields_a_session_runtime_cannot_honour_are_named() -> None:
    """For the controller, when Session is only the operator's default and admission could not refuse them."""
    spec = StreamJobSpec.model_validate(
        {**BASE, "flink": {"image": "i", "sql": ["SELECT 1"], **all_fields()}}
    )
    assert set_pod_fields(spec.flink) == list(PODS_ONLY)
    plain = StreamJobSpec.model_validate(
        {**BASE, "flink": {"image": "i", "sql": ["SELECT 1"], "env": [], "allowNonRestoredState": True}}
    )
    assert set_pod_fields(plain.flink) == []
