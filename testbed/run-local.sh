#!/usr/bin/env bash
# `make run`: the whole Kappa story on the local stack. Brings up (by PID, cached, idempotent) the control plane,
# Kafka, PostgreSQL and a Flink session cluster, then the operator under its shipped RBAC with the session runtime
# as its default, then plays the demo (examples/demo/play.py): a live clickstream, the buggy sessionizer v1, a
# replay of the fix v2, the cutover, and the corrected numbers read through the view. Everything keeps running
# afterwards, so you can look around; `make down` stops all of it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
STATE="${KAPPA_TESTBED_DIR:-$CACHE/testbed}/demo"
NS="${KAPPA_DEMO_NAMESPACE:-kappa-demo}"
HEALTH_PORT="${KAPPA_DEMO_HEALTH_PORT:-18090}"
METRICS_PORT="${KAPPA_DEMO_METRICS_PORT:-19090}"
mkdir -p "$STATE"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

bash "$ROOT/testbed/install-prereqs.sh"
say "control plane (kube-apiserver, etcd; the first run builds kube-apiserver: about 12 minutes)"
admin="$(bash "$ROOT/testbed/controlplane.sh" up)"
say "Kafka"
bootstrap="$(bash "$ROOT/testbed/kafka.sh" up)"
say "PostgreSQL"
pg="$(bash "$ROOT/testbed/postgres.sh" up)"
say "Flink session cluster and the SQL runner jar"
flink="$(bash "$ROOT/testbed/flink.sh" up)"
jar="$(bash "$ROOT/testbed/flink.sh" runner-jar)"

k() { kubectl --kubeconfig "$admin" "$@"; }
say "CRDs"
k apply --server-side --field-manager=kappa-install --force-conflicts -f "$ROOT/manifests/crds" >/dev/null
k wait --for=condition=Established --timeout=60s crd/streamjobs.kappa.dev crd/replayruns.kappa.dev \
  crd/materializedviews.kappa.dev >/dev/null
operator_kubeconfig="$(bash "$ROOT/testbed/operator-kubeconfig.sh" "$admin" "$CACHE/testbed/operator.kubeconfig")"

if alive "$STATE/operator.pid"; then
  say "the operator runs already (PID $(cat "$STATE/operator.pid"))"
else
  say "the operator (log: $STATE/operator.log)"
  # Restarted if it dies, as in a cluster (testbed/supervise.sh); `make down` stops both.
  nohup "$ROOT/testbed/supervise.sh" "$ROOT/.venv/bin/kappa" run --kubeconfig "$operator_kubeconfig" \
    --runtime Session --flink-rest-url "$flink" --sql-runner-jar "$jar" \
    --health-port "$HEALTH_PORT" --metrics-port "$METRICS_PORT" >>"$STATE/operator.log" 2>&1 </dev/null &
  echo $! >"$STATE/operator.pid"
fi

exec "$ROOT/.venv/bin/python" "$ROOT/examples/demo/play.py" --kubeconfig "$admin" --namespace "$NS" \
  --bootstrap "$bootstrap" --postgres "$pg" --flink "$flink" --state "$STATE" \
  --metrics "http://127.0.0.1:$METRICS_PORT/metrics"
