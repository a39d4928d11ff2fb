#!/usr/bin/env bash
# Writes a kubeconfig for the operator's ServiceAccount (the RBAC that manifests/ ships), from an admin one.
#   testbed/operator-kubeconfig.sh ADMIN_KUBECONFIG OUT_KUBECONFIG
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
admin=$1 out=$2
k() { kubectl --kubeconfig "$admin" "$@"; }
# --force-conflicts: the install wins over a `kubectl apply -k manifests/` (a client-side apply, as test_install.py
# runs it) that co-owns the rules from before a change to them.
k apply --server-side --field-manager=kappa-install --force-conflicts -f "$ROOT/manifests/00-namespace.yaml" -f "$ROOT/manifests/10-rbac.yaml" >/dev/null
token="$(k -n kappa-system create token kappa-operator --duration=48h)"
server="$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')"
ca="$(k config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')"
umask 077
cat >"$out" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: kappa-testbed
  cluster: {server: "$server", certificate-authority: "$ca"}
users:
- name: kappa-operator
  user: {token: "$token"}
contexts:
- name: kappa-operator
  context: {cluster: kappa-testbed, user: kappa-operator, namespace: kappa-system}
current-context: kappa-operator
KCFG
echo "$out"
