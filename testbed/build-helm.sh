#!/usr/bin/env bash
# Builds helm from the Go module helm.sh/helm/v3 (cmd/helm) at a pinned release through the Go module proxy, into a
# cache outside the repo. A warm cache makes this a no-op. The tests lint the chart (charts/kappa-operator) and
# render it (`helm template`) for `kubectl apply --dry-run=server` against the test bed's API server.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
OUT="$CACHE/helm/$HELM_VERSION"
BIN="$CACHE/bin"
TOOL="$OUT/helm"

link() { mkdir -p "$BIN" && ln -sfn "$TOOL" "$BIN/helm"; }

if [[ -x "$TOOL" ]]; then
  link
  echo "helm $HELM_VERSION cached in $BIN/helm"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build helm" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

SRC="$OUT/src"
rm -rf "$SRC" && mkdir -p "$SRC"
cd "$SRC"
go mod init kappa.dev/testbed-helm >/dev/null 2>&1
go get "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "building helm $HELM_VERSION (a few minutes on 2 cores)"
# The version Helm reports (`helm version`) and the Kubernetes version `helm template` assumes come from ldflags in
# Helm's Makefile; only the first is set here (the second defaults to the client-go version in its go.mod).
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
  -o "$TOOL.tmp" helm.sh/helm/v3/cmd/helm
mv "$TOOL.tmp" "$TOOL"
rm -rf "$SRC"
link
"$BIN/helm" version --short
