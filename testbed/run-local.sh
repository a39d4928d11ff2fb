#!/usr/bin/env bash
# The local stack with the example pipeline: control plane, CRDs, examples/ in namespace kappa-demo, and the
# operator in the foreground under its shipped RBAC. Ctrl-C stops the operator; `make down` stops the rest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
NS="${KAPPA_DEMO_NAMESPACE:-kappa-demo}"

admin="$("$ROOT/testbed/controlplane.sh" up)"
k() { kubectl --kubeconfig "$admin" "$@"; }
k apply --server-side --field-manager=kappa-install --force-conflicts -f "$ROOT/crds" >/dev/null
k wait --for=condition=Established --timeout=60s crd/streamjobs.kappa.dev crd/replayruns.kappa.dev \
  crd/materializedviews.kappa.dev >/dev/null
operator_kubeconfig="$("$ROOT/testbed/operator-kubeconfig.sh" "$admin" "$CACHE/testbed/operator.kubeconfig")"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "$NS" apply -f "$ROOT/examples"

cat <<MSG

  Local stack is up. In another shell:
    export KUBECONFIG=$admin
    kubectl -n $NS get sj,rr,mv
    kubectl -n $NS wait --for=condition=Reconciling sj/sessionizer
  Stop the operator with Ctrl-C, the control plane with: make down

MSG
exec "$ROOT/.venv/bin/kappa" run --kubeconfig "$operator_kubeconfig" --health-port 18081
