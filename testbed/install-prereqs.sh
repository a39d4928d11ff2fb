#!/usr/bin/env bash
# System packages the test bed needs that are not on a fresh machine: etcd from Debian. Idempotent.
set -euo pipefail
need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "please install: ${need[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
for tool in go kubectl python3 java mvn; do
  command -v "$tool" >/dev/null || { echo "$tool is required (see README prerequisites)" >&2; exit 1; }
done
