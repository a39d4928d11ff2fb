#!/usr/bin/env bash
# `make down`: stop what `make run` started, by PID: the demo's producer, the operator, Flink, PostgreSQL, Kafka
# and the control plane. Idempotent. Data stays in the cache (testbed/*.sh wipe, where there is one, removes it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
STATE="${KAPPA_TESTBED_DIR:-$CACHE/testbed}/demo"

stop_pid() { # name pidfile
  [[ -f "$2" ]] || return 0
  local pid; pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "demo: stopped $1 (PID $pid)" >&2
  fi
  rm -f "$2"
}

stop_pid producer "$STATE/producer.pid"
stop_pid operator "$STATE/operator.pid"
bash "$ROOT/testbed/flink.sh" down
bash "$ROOT/testbed/postgres.sh" down
bash "$ROOT/testbed/kafka.sh" down
bash "$ROOT/testbed/controlplane.sh" down
