"""Renders prometheusrule.yaml (a monitoring.coreos.com/v1 PrometheusRule) from rules.yaml, the one source of
the alerting rules. `--check` exits 1 when the committed file differs; `--runbook-base URL` prefixes each
runbook_url (a path in this repository) to make it a link, e.g. to the repository's web view.

    python3 manifests/monitoring/render_prometheusrule.py [--check] [--runbook-base URL] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yaml"
OUT = HERE / "prometheusrule.yaml"
HEADER = (
    "# Rendered from rules.yaml by render_prometheusrule.py; edit rules.yaml, then run\n"
    "#   python3 manifests/monitoring/render_prometheusrule.py\n"
    "# Needs the Prometheus Operator's CRDs. Scrape the operator with honorLabels: true (see rules.yaml).\n"
)


class _Literal(str):
    """A multi-line PromQL expression, kept as a `|` block."""


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def render(rules: dict[str, Any], runbook_base: str = "") -> str:
    groups = []
    for group in rules["groups"]:
        out_rules = []
        for source in group["rules"]:
            rule = dict(source)
            if "\n" in rule["expr"]:
                rule["expr"] = _Literal(rule["expr"])
            annotations = dict(rule.get("annotations") or {})
            if runbook_base and "runbook_url" in annotations:
                annotations["runbook_url"] = runbook_base.rstrip("/") + "/" + annotations["runbook_url"]
            if annotations:
                rule["annotations"] = annotations
            out_rules.append(rule)
        groups.append({**group, "rules": out_rules})
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "kappa-operator",
            "namespace": "kappa-system",
            "labels": {"app.kubernetes.io/name": "kappa-operator", "app.kubernetes.io/component": "alerts"},
        },
        "spec": {"groups": groups},
    }
    body = yaml.safe_dump(manifest, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not up to date")
    parser.add_argument("--runbook-base", default="", help="URL prefixed to each runbook_url")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render(yaml.safe_load(RULES.read_text()), args.runbook_base)
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
