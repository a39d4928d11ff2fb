#!/usr/bin/env bash
# Builds the etcd server from the Go module go.etcd.io/etcd/server/v3 at a pinned release through the Go
# module proxy, into a cache outside the repo. A warm cache makes this a no-op. controlplane.sh uses it
# only when KAPPA_ETCD_VERSION is set; by default the test bed runs Debian's etcd-server (3.4).
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
OUT="$CACHE/etcd/v$ETCD_VERSION"
BIN="$OUT/bin"

if [[ -x "$BIN/etcd" ]]; then
  echo "etcd v$ETCD_VERSION cached in $BIN"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build etcd" >&2; exit 1; }
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# `go install module@version` refuses modules whose go.mod has replace directives, and etcd's has some
# (../api, ../client/...), so build from a throwaway module that requires it; a dependency's replaces
# are ignored and its requires name the published api/client/pkg modules of the same release.
SRC="$OUT/src"
rm -rf "$SRC" && mkdir -p "$SRC" "$BIN"
cd "$SRC"
go mod init kappa.dev/testbed-etcd >/dev/null 2>&1
go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"

# In 3.5 and later the module root is the server's main package (server/main.go). The version it prints
# is a constant in go.etcd.io/etcd/api/v3/version, so no ldflags are needed.
echo "building etcd v$ETCD_VERSION (a few minutes on 2 cores)"
nice -n 19 go build -trimpath -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$BIN/etcd.tmp" "$BIN/etcd"
"$BIN/etcd" --version
