#!/usr/bin/env bash
# Builds the Argo CD Lua test harness (testbed/argocd-lua: gopher-lua with the libraries Argo CD opens) into
# a cache outside the repo, its modules from the Go module proxy. Rebuilt only when its source changes; a
# warm cache makes this a no-op. Prints the binary's path last.
set -euo pipefail

CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/argocd-lua" && pwd)"
BIN="$CACHE/bin/argocd-lua"
STAMP="$BIN.source-sha256"

sum="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC"/*.go | sha256sum | cut -d' ' -f1)"
if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$sum" ]]; then
  echo "argocd-lua cached in $BIN" >&2
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build the Argo CD Lua harness" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
mkdir -p "$CACHE/bin"
echo "building argocd-lua from $SRC" >&2
(cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$BIN.tmp" .)
mv "$BIN.tmp" "$BIN"
echo "$sum" > "$STAMP"
echo "$BIN"
