#!/usr/bin/env bash
# Generates the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs from its Go API module
# (github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring) with controller-gen
# (sigs.k8s.io/controller-tools), both at pinned releases through the Go module proxy, as the Prometheus Operator
# generates its own (`controller-gen crd`); into a cache outside the repo. A warm cache makes this a no-op.
# Prints the directory holding the CRDs. The install tests send the chart's and the kustomize component's
# ServiceMonitor and PrometheusRule through `kubectl apply --dry-run=server` against them.
set -euo pipefail

PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.95.2}"
CONTROLLER_TOOLS_VERSION="${CONTROLLER_TOOLS_VERSION:-v0.23.0}"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
OUT="$CACHE/prometheus-operator-crds/$PROMETHEUS_OPERATOR_VERSION"
GEN="$CACHE/controller-gen/$CONTROLLER_TOOLS_VERSION/controller-gen"
API=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring

if [[ -f "$OUT/.complete" ]]; then
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to generate the Prometheus Operator CRDs" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

SRC="$OUT.src"
rm -rf "$SRC" "$OUT" && mkdir -p "$SRC" "$OUT" "$(dirname "$GEN")"
cd "$SRC"
go mod init kappa.dev/testbed-prometheus-crds >/dev/null 2>&1
if [[ ! -x "$GEN" ]]; then
  go get "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" >&2
  echo "building controller-gen $CONTROLLER_TOOLS_VERSION" >&2
  go build -trimpath -ldflags "-s -w" -o "$GEN.tmp" sigs.k8s.io/controller-tools/cmd/controller-gen
  mv "$GEN.tmp" "$GEN"
fi
# The API package alone, in a module of its own (it is a module of its own upstream too).
cat >main.go <<GO
package main

import _ "$API/v1"

func main() {}
GO
go get "$API@$PROMETHEUS_OPERATOR_VERSION" >&2
go mod tidy >&2
# Descriptions left out (maxDescLen=0): the CRDs serve validation only, and stay well under the size limits.
"$GEN" crd:crdVersions=v1,maxDescLen=0 paths="$API/v1" output:crd:dir="$OUT" >&2
rm -rf "$SRC"
ls "$OUT"/*servicemonitors.yaml "$OUT"/*prometheusrules.yaml >/dev/null
touch "$OUT/.complete"
echo "$OUT"
