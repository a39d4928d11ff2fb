#!/usr/bin/env bash
# A private PostgreSQL server on loopback from Debian's `postgresql` package: the serving store behind
# MaterializedView cutovers. TCP on 127.0.0.1 only (no Unix socket), trust authentication, and durability off
# (fsync, synchronous_commit, full_page_writes) because test data is disposable.
#
#   testbed/postgres.sh up      initdb (once) and start; idempotent; prints the URI of database `kappa` as role `kappa`
#   testbed/postgres.sh down    stop what `up` started, by PID (fast shutdown); idempotent
#   testbed/postgres.sh status  exit 0 when the server accepts connections
#   testbed/postgres.sh env     print `export KAPPA_PG_URI=...`
#   testbed/postgres.sh wipe    down, then delete the cluster's state (data, log)
#
# Role `kappa` (LOGIN CREATEDB, not a superuser) owns database `kappa`, as an application role would in production;
# the superuser is `postgres` (postgresql://postgres@127.0.0.1:<port>/kappa).
#
# PostgreSQL refuses to run as root. As root (CI) the server runs as KAPPA_PG_USER: by default `postgres`, which
# Debian's package creates, else a system user `kappa-pg` made here. That user cannot enter a 0700 home such as
# /root, so then the data directory lives in that user's home, keyed by the state directory, and
# "$STATE/data" is a symlink to it.
set -euo pipefail

CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
STATE="${KAPPA_TESTBED_DIR:-$CACHE/testbed}/postgres"
PORT="${KAPPA_PG_PORT:-55432}"
PIDFILE="$STATE/postgres.pid"
LOGFILE="$STATE/postgres.log"
URI="postgresql://kappa@127.0.0.1:$PORT/kappa"

log() { echo "postgres: $*" >&2; }

# The newest /usr/lib/postgresql/<major>/bin, or KAPPA_PG_VERSION's; empty when the package is missing.
find_bin() {
  local d
  if [[ -n "${KAPPA_PG_VERSION:-}" ]]; then d="/usr/lib/postgresql/$KAPPA_PG_VERSION/bin"
  else d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -1); fi
  [[ -n "$d" && -x "$d/postgres" ]] && echo "$d"
  return 0
}

ensure_postgres() {
  BIN=$(find_bin)
  [[ -n "$BIN" ]] && return
  log "installing postgresql from Debian"
  if [[ $(id -u) -ne 0 ]]; then log "postgresql is missing and I am not root: apt-get install postgresql"; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql >/dev/null)
  BIN=$(find_bin)
  [[ -n "$BIN" ]] || { log "no /usr/lib/postgresql/*/bin/postgres after installing postgresql"; exit 1; }
}

# Sets RUN (the command prefix that drops root, empty when not root), PG_USER and DATA.
choose_user_and_data() {
  RUN=(); PG_USER=$(id -un); DATA="$STATE/data"
  [[ $(id -u) -eq 0 ]] || return 0
  PG_USER="${KAPPA_PG_USER:-}"
  if [[ -z "$PG_USER" ]]; then
    if getent passwd postgres >/dev/null; then PG_USER=postgres; else PG_USER=kappa-pg; fi
  fi
  if ! getent passwd "$PG_USER" >/dev/null; then
    log "creating system user $PG_USER"
    useradd --system --user-group --home-dir "/var/lib/$PG_USER" --create-home --shell /usr/sbin/nologin "$PG_USER"
  fi
  # setpriv execs in place (runuser and su fork), so $! stays the postmaster's PID.
  RUN=(setpriv "--reuid=$PG_USER" "--regid=$(id -g "$PG_USER")" --init-groups --)
  if [[ -L "$STATE/data" ]]; then DATA=$(readlink "$STATE/data"); return; fi
  mkdir -p "$STATE"
  if ! (cd / && "${RUN[@]}" test -x "$STATE"); then
    local home key
    home=$(getent passwd "$PG_USER" | cut -d: -f6)
    key=$(echo -n "$STATE" | sha256sum | cut -c1-12)
    DATA="$home/kappa-testbed/$key"
    log "$PG_USER cannot reach $STATE: the data directory is $DATA"
    ln -sfn "$DATA" "$STATE/data"
  fi
}

as_pg() { (cd / && "${RUN[@]}" "$@"); }

# PID is a live process; a zombie counts as gone (PID 1 here reaps orphans only now and then).
running() {
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$st" && ${st:0:1} != Z ]]
}

# The PID file names a live postmaster of our data directory (guards against a stale file and PID reuse).
alive() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid=$(cat "$PIDFILE")
  running "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'postgres -D '
}

answers() {
  local isready
  isready=$(find_bin); isready="${isready:+$isready/}pg_isready"
  # As the superuser: role kappa does not exist yet right after initdb, and a refused login fills the log.
  "$isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -U postgres -t 2 2>/dev/null
}

init_data() {
  local major; major=$(basename "$(dirname "$BIN")")
  if [[ -f "$DATA/PG_VERSION" ]]; then
    [[ $(cat "$DATA/PG_VERSION") == "$major" ]] && return
    log "$DATA was made by PostgreSQL $(cat "$DATA/PG_VERSION"), not $major: wiping it"
  elif [[ -e "$DATA" ]]; then
    log "$DATA is half made: wiping it"
  fi
  rm -rf "$DATA"
  mkdir -p "$DATA"
  chown "$PG_USER:" "$STATE" "$DATA"
  chmod 700 "$DATA"
  log "initdb $DATA (PostgreSQL $major, as $PG_USER)"
  as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync \
    >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; exit 1; }
  # Loopback only; there is no Unix socket (unix_socket_directories is empty), so no `local` lines.
  as_pg tee "$DATA/pg_hba.conf" >/dev/null <<'HBA'
# Written by testbed/postgres.sh at initdb.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  trust
host    all       all   ::1/128       trust
HBA
}

start() {
  # Settings on the command line rather than in postgresql.conf, so a changed KAPPA_PG_PORT takes effect.
  nohup "${RUN[@]}" "$BIN/postgres" -D "$DATA" \
    -c listen_addresses=127.0.0.1 -c port="$PORT" -c unix_socket_directories= \
    -c max_connections=100 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c log_min_messages=warning -c log_line_prefix='%m [%p] %q%u@%d ' \
    >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  log "started PID $!; log $LOGFILE"
}

wait_ready() { # seconds
  local secs=$1 pid; pid=$(cat "$PIDFILE")
  for _ in $(seq $((secs * 10))); do
    answers && return 0
    running "$pid" || { log "the server exited; see $LOGFILE"; tail -20 "$LOGFILE" >&2; return 1; }
    sleep 0.1
  done
  log "the server did not answer on 127.0.0.1:$PORT in ${secs}s; see $LOGFILE"; tail -20 "$LOGFILE" >&2; return 1
}

# Role and database `kappa`; checked on every start, so a half-finished first start is repaired.
ensure_kappa() {
  local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
  "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'kappa'" | grep -q 1 ||
    "${psql[@]}" -d postgres -c "CREATE ROLE kappa LOGIN CREATEDB"
  "${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'kappa'" | grep -q 1 ||
    "${psql[@]}" -d postgres -c "CREATE DATABASE kappa OWNER kappa"
}

up() {
  if alive && answers; then
    log "already running"; echo "$URI"; return
  fi
  ensure_postgres
  mkdir -p "$STATE"
  choose_user_and_data
  if alive; then
    log "already starting (PID $(cat "$PIDFILE"))"
  else
    if answers; then log "something else answers on 127.0.0.1:$PORT (not PID file $PIDFILE)"; exit 1; fi
    init_data
    # After a SIGKILL the lock file outlives the postmaster, and a zombie PID makes PostgreSQL think it still runs.
    local lockpid
    lockpid=$(head -1 "$DATA/postmaster.pid" 2>/dev/null || true)
    if [[ -n "$lockpid" ]] && ! running "$lockpid"; then
      log "removing the stale lock file of PID $lockpid"; rm -f "$DATA/postmaster.pid"
    fi
    start
  fi
  if ! wait_ready 60; then exit 1; fi
  # The bootstrap connection goes to database postgres, which exists from initdb on.
  ensure_kappa
  log "ready: $URI"
  echo "$URI"
}

down() {
  if alive; then
    local pid; pid=$(cat "$PIDFILE")
    kill -INT "$pid" 2>/dev/null || true # fast shutdown: ends open sessions (SIGTERM would wait for them)
    for _ in $(seq 200); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then
      log "PID $pid ignored SIGINT for 20 s: SIGQUIT"; kill -QUIT "$pid" 2>/dev/null || true
      for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped"
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
}

wipe() {
  down
  if [[ -L "$STATE/data" ]]; then rm -rf "$(readlink "$STATE/data")"; fi
  rm -rf "$STATE"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) answers ;;
  env) echo "export KAPPA_PG_URI=$URI" ;;
  wipe) wipe ;;
  *) echo "usage: $0 up|down|status|env|wipe" >&2; exit 2 ;;
esac
