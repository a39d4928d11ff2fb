#!/usr/bin/env bash
# A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, RBAC, ServiceAccount tokens) and
# kube-controller-manager running only the garbagecollector and namespace controllers.
#
#   testbed/controlplane.sh up      build (cached) and start; idempotent; prints the admin kubeconfig path
#   testbed/controlplane.sh down    stop what `up` started, by PID; idempotent
#   testbed/controlplane.sh status  exit 0 when the apiserver answers /readyz
#   testbed/controlplane.sh env     print `export KUBECONFIG=...`
#   testbed/controlplane.sh wipe    `down`, then delete the state dir: etcd's data (every object, the demo's
#                                   and the benchmarks' too), the PKI and the logs; the next `up` starts empty
#   testbed/controlplane.sh stop-apiserver  stop kube-apiserver alone (etcd and the controllers keep running),
#                                   as an API-server restart does; `up` starts it again
#
# etcd is Debian's etcd-server (3.4) on PATH. KAPPA_ETCD_VERSION=3.6.16 (opt-in, empty by default) makes `up`
# build that release with build-etcd.sh (cached) and run it instead, on its own data dir
# $STATE/etcd-v$KAPPA_ETCD_VERSION, since 3.6 cannot open a 3.4 data dir; the flags are the same.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${K8S_VERSION:-1.36.2}"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
STATE="${KAPPA_TESTBED_DIR:-$CACHE/testbed}"
BIN="$CACHE/k8s/v$K8S_VERSION/bin"
ETCD_PORT="${KAPPA_ETCD_PORT:-23790}"
API_PORT="${KAPPA_API_PORT:-16443}"
KCM_PORT="${KAPPA_KCM_PORT:-$((API_PORT + 1))}"
PKI="$STATE/pki"
LOGS="$STATE/logs"
KUBECONFIG_OUT="$STATE/admin.kubeconfig"
ETCD_VERSION_OPT="${KAPPA_ETCD_VERSION:-}"
if [[ -n "$ETCD_VERSION_OPT" ]]; then
  ETCD_BIN="$CACHE/etcd/v$ETCD_VERSION_OPT/bin/etcd"
  ETCD_DATA="$STATE/etcd-v$ETCD_VERSION_OPT"
else
  ETCD_BIN=etcd
  ETCD_DATA="$STATE/etcd"
fi

log() { echo "controlplane: $*" >&2; }

alive() { [[ -f "$STATE/$1.pid" ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# A running etcd must be the one asked for: measuring against the other release by accident is the failure
# this guards. Skipped when /proc does not tell.
check_etcd_binary() {
  alive etcd || return 0
  local running want
  running="$(readlink "/proc/$(cat "$STATE/etcd.pid")/exe" 2>/dev/null)" || return 0
  want="$(command -v "$ETCD_BIN")" || return 0
  want="$(readlink -f "$want")"
  [[ "${running% (deleted)}" == "$want" ]] && return 0
  log "the running etcd is $running, not $want (KAPPA_ETCD_VERSION='$ETCD_VERSION_OPT'); run \`down\` first"
  exit 1
}

readyz() {
  curl -sf --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

ensure_etcd() {
  if [[ -n "$ETCD_VERSION_OPT" ]]; then
    ETCD_VERSION="$ETCD_VERSION_OPT" "$HERE/build-etcd.sh" >&2
    return
  fi
  command -v etcd >/dev/null && return
  log "installing etcd-server from Debian"
  if [[ $(id -u) -ne 0 ]]; then log "etcd is missing and I am not root: apt-get install etcd-server"; exit 1; fi
  (apt-get install -y -qq --no-install-recommends etcd-server >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends etcd-server >/dev/null)
}

cert() { # name cn org [san]
  local name=$1 cn=$2 org=$3 san=${4:-}
  [[ -f "$PKI/$name.crt" ]] && return
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  local subj="/CN=$cn"; [[ -n "$org" ]] && subj="/O=$org/CN=$cn"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  local ext="$PKI/$name.ext"
  { echo "basicConstraints=CA:FALSE"; echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$san" ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi; } >"$ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null
}

make_pki() {
  mkdir -p "$PKI"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
      -subj "/CN=kappa-testbed-ca" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,IP:10.0.0.1"
  cert admin kappa-admin system:masters
  # Without the token controller there are no per-controller ServiceAccounts; the two controllers run as admin.
  cert kcm system:kube-controller-manager system:masters
  if [[ ! -f "$PKI/sa.key" ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
}

kubeconfig() { # file user
  local file=$1 user=$2
  cat >"$file" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: kappa-testbed
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $user
  user:
    client-certificate: $PKI/$user.crt
    client-key: $PKI/$user.key
contexts:
- name: kappa-testbed
  context: {cluster: kappa-testbed, user: $user, namespace: default}
current-context: kappa-testbed
KCFG
}

start() { # name logfile cmd...
  local name=$1; shift
  nohup "$@" >"$LOGS/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

wait_for() { # what seconds check...
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 5))); do "$@" && return 0; sleep 0.2; done
  log "$what did not become ready in ${secs}s; see $LOGS"; tail -20 "$LOGS"/*.log >&2 || true; return 1
}

up() {
  check_etcd_binary
  if alive etcd && alive kube-apiserver && alive kube-controller-manager && readyz; then
    log "already running"; echo "$KUBECONFIG_OUT"; return
  fi
  "$HERE/build-k8s.sh" >&2
  ensure_etcd
  mkdir -p "$STATE" "$LOGS"
  make_pki
  kubeconfig "$KUBECONFIG_OUT" admin
  kubeconfig "$STATE/controller-manager.kubeconfig" kcm

  if ! alive etcd; then
    start etcd "$ETCD_BIN" --name kappa-testbed --data-dir "$ETCD_DATA" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
      --initial-cluster "kappa-testbed=http://127.0.0.1:$((ETCD_PORT + 10))" \
      --quota-backend-bytes 4294967296 --log-level warn
    wait_for etcd 30 curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$ETCD_PORT/health"
  fi
  if ! alive kube-apiserver; then
    start kube-apiserver "$BIN/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
      --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
      --client-ca-file "$PKI/ca.crt" \
      --service-account-issuer "https://kubernetes.default.svc" \
      --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
      --api-audiences "https://kubernetes.default.svc" \
      --service-cluster-ip-range 10.0.0.0/24 \
      --authorization-mode RBAC \
      --disable-admission-plugins ServiceAccount \
      --allow-privileged=false --profiling=false --v=1
    wait_for kube-apiserver 90 readyz
  fi
  if ! alive kube-controller-manager; then
    start kube-controller-manager "$BIN/kube-controller-manager" \
      --kubeconfig "$STATE/controller-manager.kubeconfig" \
      --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
      --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
      --controllers garbagecollector,namespace \
      --leader-elect=false --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --v=1
    sleep 0.5
    alive kube-controller-manager || { tail -20 "$LOGS/kube-controller-manager.log" >&2; exit 1; }
  fi
  log "ready: KUBECONFIG=$KUBECONFIG_OUT"
  echo "$KUBECONFIG_OUT"
}

stop_one() {
  local name=$1 pid
  [[ -f "$STATE/$name.pid" ]] || return 0
  pid=$(cat "$STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}

down() {
  # The apiserver goes before etcd.
  stop_one kube-controller-manager
  stop_one kube-apiserver
  stop_one etcd
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) readyz ;;
  stop-apiserver) stop_one kube-apiserver; log "kube-apiserver stopped" ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_OUT" ;;
  wipe) down; rm -rf "$STATE" ;;
  *) echo "usage: $0 up|down|status|env|wipe|stop-apiserver" >&2; exit 2 ;;
esac
