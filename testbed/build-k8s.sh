#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager from the Go module k8s.io/kubernetes at a pinned
# release through the Go module proxy, into a cache outside the repo. A warm cache makes this a no-op.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.36.2}"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
OUT="$CACHE/k8s/v$K8S_VERSION"
BIN="$OUT/bin"

if [[ -x "$BIN/kube-apiserver" && -x "$BIN/kube-controller-manager" ]]; then
  echo "kube binaries v$K8S_VERSION cached in $BIN"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the control plane" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
# Go 1.27's JSON v2 default corrupts the apiserver's OpenAPI; harmless to set on 1.26.
export GOEXPERIMENT="${GOEXPERIMENT:-nojsonv2}"
if go version | grep -q 'go1.26'; then unset GOEXPERIMENT; fi

SRC="$OUT/src"
rm -rf "$SRC" && mkdir -p "$SRC" "$BIN"
cd "$SRC"
go mod init kappa.dev/testbed-kube >/dev/null 2>&1
gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
# k8s.io/kubernetes replaces each staging module with ./staging/...; point each at its v0.Y.Z release.
minor="${K8S_VERSION#*.}"
staging="$(sed -n 's#^[[:space:]]*\(k8s.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod")"
for m in $staging; do
  go mod edit -replace="$m=$m@v0.$minor"
done
go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION"

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=${K8S_VERSION%%.*} \
 -X k8s.io/component-base/version.gitMinor=${minor%%.*} \
 -X k8s.io/component-base/version.gitTreeState=clean"
for cmd in kube-apiserver kube-controller-manager; do
  echo "building $cmd v$K8S_VERSION (several minutes on 2 cores)"
  go build -trimpath -ldflags "$ldflags" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
  mv "$BIN/$cmd.tmp" "$BIN/$cmd"
done
"$BIN/kube-apiserver" --version
