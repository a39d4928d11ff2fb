#!/usr/bin/env bash
# Builds promtool from the Go module github.com/prometheus/prometheus (cmd/promtool) at a pinned release through
# the Go module proxy, into a cache outside the repo. A warm cache makes this a no-op. promtool checks and
# unit-tests the alerting rules (manifests/monitoring/) and parses the dashboard's PromQL (`promql format`).
# The web UI assets are not needed: promtool does not import the web package (and they are not in the module).
set -euo pipefail

# Prometheus 3.MM.P is tagged v0.3MM.P as a Go module: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
OUT="$CACHE/promtool/$PROMETHEUS_MODULE_VERSION"
BIN="$CACHE/bin"
TOOL="$OUT/promtool"

link() { mkdir -p "$BIN" && ln -sfn "$TOOL" "$BIN/promtool"; }

if [[ -x "$TOOL" ]]; then
  link
  echo "promtool $PROMETHEUS_MODULE_VERSION cached in $BIN/promtool"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build promtool" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

SRC="$OUT/src"
rm -rf "$SRC" && mkdir -p "$SRC"
cd "$SRC"
go mod init kappa.dev/testbed-promtool >/dev/null 2>&1
go get "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
echo "building promtool $PROMETHEUS_MODULE_VERSION (a few minutes on 2 cores)"
# remove_all_sd leaves out the service-discovery plugins (cloud SDKs): rule checks and tests, and the PromQL
# parser, do not use them, and they are most of the build.
go build -tags remove_all_sd -trimpath -ldflags "-s -w -X github.com/prometheus/common/version.Version=${PROMETHEUS_MODULE_VERSION#v}" \
  -o "$TOOL.tmp" github.com/prometheus/prometheus/cmd/promtool
mv "$TOOL.tmp" "$TOOL"
rm -rf "$SRC"
link
"$BIN/promtool" --version | head -1
