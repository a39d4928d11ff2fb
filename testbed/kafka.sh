#!/usr/bin/env bash
# A real single-node Apache Kafka broker on loopback: KRaft combined mode (broker and controller in one JVM),
# PLAINTEXT, SASL_PLAINTEXT with SCRAM-SHA-512 on a port of its own (KAPPA_KAFKA_SASL_PORT, by default
# KAPPA_KAFKA_PORT + 2) and SSL with client certificates required (KAPPA_KAFKA_SSL_PORT, KAPPA_KAFKA_PORT + 3; a
# test CA made with openssl), replication factor 1 everywhere, fast retention. The jars come from Maven Central
# (testbed/kafka/pom.xml).
#
#   testbed/kafka.sh up      fetch the jars (cached), format (once) and start; idempotent; prints the bootstrap address
#   testbed/kafka.sh fetch   only fetch the jars (cached)
#   testbed/kafka.sh down    stop what `up` started, by PID; idempotent
#   testbed/kafka.sh status  exit 0 when the broker answers an ApiVersions request
#   testbed/kafka.sh env     print `export KAPPA_KAFKA_BOOTSTRAP=...`, and the SASL and SSL listeners and the CA
#   testbed/kafka.sh client-cert NAME   print a client key and certificate (PEM) signed by the test CA
#   testbed/kafka.sh wipe    down, then delete the broker's state (data, config, log)
#
# The SASL listener authenticates SCRAM-SHA-512 users and authorizes nothing (no authorizer): a wrong password is
# refused, a right one may do anything. A fresh broker is formatted with the user `kappa`, password
# `kappa-secret` (KAPPA_KAFKA_SCRAM_USER, KAPPA_KAFKA_SCRAM_PASSWORD); more users can be added at any time through
# the admin API on the PLAINTEXT listener (the tests do: AdminClient.alter_user_scram_credentials).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.3.1}" # keep equal to <kafka.version> in kafka/pom.xml
CACHE="${KAFKA_CACHE:-${KAPPA_CACHE:-$HOME/.cache/kappa-operator}}"
STATE="${KAPPA_TESTBED_DIR:-$CACHE/testbed}/kafka"
LIBS="$CACHE/kafka/$KAFKA_VERSION/libs"
PORT="${KAPPA_KAFKA_PORT:-19092}"
# Partitions of __consumer_offsets (the group coordinators' shards): few, so that a group's first request is served
# soon. tests/integration/kafka_lifecycle.py asks for more, to hold a fresh broker's loading window open longer.
OFFSETS_PARTITIONS="${KAPPA_KAFKA_OFFSETS_PARTITIONS:-5}"
CONTROLLER_PORT="${KAPPA_KAFKA_CONTROLLER_PORT:-19093}"
SASL_PORT="${KAPPA_KAFKA_SASL_PORT:-$((PORT + 2))}"
SSL_PORT="${KAPPA_KAFKA_SSL_PORT:-$((PORT + 3))}"
SCRAM_USER="${KAPPA_KAFKA_SCRAM_USER:-kappa}"
SCRAM_PASSWORD="${KAPPA_KAFKA_SCRAM_PASSWORD:-kappa-secret}"
# Named as in bin/kafka-run-class.sh. The defaults favour start-up time over throughput: on a 2-CPU machine C1 only
# and the serial collector halve the time to ready (18 s -> 7 s); a test broker never gets hot enough to miss C2.
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
PERF_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}"
# Class-data sharing: the first broker run records its loaded classes when it exits (on `down`), later runs map them
# (another ~2 s off the start). KAPPA_KAFKA_CDS=0 turns it off. The archive belongs to the jars and the JDK; a
# mismatched archive is ignored by the JVM with a warning, and `wipe` does not touch it.
CDS="${KAPPA_KAFKA_CDS:-1}"
CDS_ARCHIVE="$CACHE/kafka/$KAFKA_VERSION/kafka-cds.jsa"
DATA="$STATE/data"
CONFIG="$STATE/server.properties"
PIDFILE="$STATE/kafka.pid"
LOGFILE="$STATE/kafka.log"
BOOTSTRAP="127.0.0.1:$PORT"
SASL_BOOTSTRAP="127.0.0.1:$SASL_PORT"
SSL_BOOTSTRAP="127.0.0.1:$SSL_PORT"
TLS="$STATE/tls" # a test CA (ca.crt, ca.key) and the broker's certificate for 127.0.0.1 (broker.pem: key and chain)

log() { echo "kafka: $*" >&2; }

java_opts() { # one option a line
  # shellcheck disable=SC2206 # word splitting of the option strings is intended
  local heap=($HEAP_OPTS) perf=($PERF_OPTS)
  printf '%s\n' "${heap[@]}" "${perf[@]}" \
    "-Dlog4j2.configurationFile=$HERE/kafka/log4j2.properties" "-Dkafka.logs.dir=$STATE"
  [[ $CDS == 1 && -f "$CDS_ARCHIVE" ]] && echo "-XX:SharedArchiveFile=$CDS_ARCHIVE"
  return 0
}

kjava() { # [jvm-option...] main-class args...: run a Kafka class on the cached jars, in the foreground
  local opts; mapfile -t opts < <(java_opts)
  java "${opts[@]}" -cp "$LIBS/*" "$@"
}

# The PID file names a live process that is our broker (guards against a stale file and PID reuse).
alive() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' kafka\.Kafka '
}

# A Kafka-protocol ApiVersions v0 request (api key 18, correlation id 1, client id "kappa") over bash's /dev/tcp;
# the broker answers when the reply carries correlation id 1 and error code 0. Unlike a bare TCP connect this fails
# while the broker is still starting (it enables request processing last), and it needs no JVM.
answers() {
  local reply
  reply=$(
    exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf '\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05kappa' >&3
    timeout 2 head -c 10 <&3 | od -An -tx1 | tr -d ' \n'
  ) || return 1
  [[ ${reply:8:12} == 000000010000 ]]
}

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]} from Debian"
  if [[ $(id -u) -ne 0 ]]; then log "missing ${missing[*]} and I am not root: apt-get install ${missing[*]}"; exit 1; fi
  (apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null)
}

fetch_jars() {
  [[ -f "$LIBS/.complete" ]] && return
  command -v mvn >/dev/null || ensure_tools
  log "fetching the Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  # Into a temporary directory first, so that an interrupted download never looks complete.
  rm -rf "$LIBS" "$LIBS.tmp" "$CDS_ARCHIVE" "$CDS_ARCHIVE.tmp"
  mkdir -p "$(dirname "$LIBS")"
  if ! mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    "-Dkafka.version=$KAFKA_VERSION" "-DoutputDirectory=$LIBS.tmp" >"$LIBS.mvn.log" 2>&1; then
    cat "$LIBS.mvn.log" >&2; log "maven failed; see $LIBS.mvn.log"; exit 1
  fi
  touch "$LIBS.tmp/.complete"
  mv "$LIBS.tmp" "$LIBS"
}

write_config() {
  cat >"$CONFIG" <<PROPS
# Written by testbed/kafka.sh on every start; edits are lost.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
# Mutual TLS on the SSL listener: the broker's certificate and every client's are signed by the test CA.
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$TLS/broker.pem
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$TLS/ca.crt
listener.name.ssl.ssl.client.auth=required
# SCRAM-SHA-512 on the SASL_PLAINTEXT listener; the credentials live in the metadata log (KRaft).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$DATA

# One broker: replication factor 1 for everything, the internal topics included, and few internal partitions.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=$OFFSETS_PARTITIONS
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=5

# Tests create their topics explicitly, and a group should not wait for more members.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0

# Fast retention: the retention task starts at once and runs every 500 ms, and deleted segments go at once
# (log.segment.delete.delay.ms is the broker default of the topic config file.delete.delay.ms).
log.initial.task.delay.ms=0
log.retention.check.interval.ms=500
log.segment.delete.delay.ms=0

# Smaller than the 128 MiB default, a quarter of the heap.
log.cleaner.dedupe.buffer.size=33554432
PROPS
}

format_storage() {
  local stamp="$STATE/formatted-controller-port"
  if [[ -f "$DATA/meta.properties" && -f "$stamp" && $(cat "$stamp") == "$CONTROLLER_PORT" ]]; then return; fi
  if [[ -e "$DATA" ]]; then
    # A standalone format writes the controller's endpoint into the voter set in the metadata log.
    log "the controller port changed (or the storage is half formatted): wiping $DATA"
    rm -rf "$DATA"
  fi
  local cluster_id
  cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
  log "formatting $DATA (cluster id $cluster_id)"
  kjava -Dkappa.kafka.loglevel=WARN kafka.tools.StorageTool format --standalone "--cluster-id=$cluster_id" -c "$CONFIG" \
    --add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" >&2
  echo "$CONTROLLER_PORT" >"$stamp"
}

start() {
  local opts; mapfile -t opts < <(java_opts)
  if [[ $CDS == 1 && ! -f "$CDS_ARCHIVE" ]]; then
    rm -f "$CDS_ARCHIVE.tmp"; opts+=("-XX:ArchiveClassesAtExit=$CDS_ARCHIVE.tmp")
  fi
  nohup java "${opts[@]}" -cp "$LIBS/*" kafka.Kafka "$CONFIG" >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  log "started PID $!; log $LOGFILE"
}

wait_ready() { # seconds
  local secs=$1 pid; pid=$(cat "$PIDFILE")
  for _ in $(seq $((secs * 5))); do
    answers && return 0
    # Not alive(): right after the fork the child's command line is still bash's.
    kill -0 "$pid" 2>/dev/null || { log "the broker exited; see $LOGFILE"; tail -30 "$LOGFILE" >&2; return 1; }
    sleep 0.2
  done
  log "the broker did not answer on $BOOTSTRAP in ${secs}s; see $LOGFILE"; tail -30 "$LOGFILE" >&2; return 1
}

# The running broker was started with today's listeners (the SASL one came later: a broker kept running between
# runs, KAPPA_KEEP_TESTBED, may predate it). The config file is written on every start, so it says what runs.
current() { grep -qF "SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT" "$CONFIG" 2>/dev/null; }

# The test CA and the broker's certificate (SAN IP 127.0.0.1, as librdkafka and Python check the host), made
# once per state directory with openssl. Clients get certificates signed by the same CA (`testbed/kafka.sh
# client-cert NAME`).
make_tls() {
  [[ -f "$TLS/broker.pem" && -f "$TLS/ca.crt" ]] && return
  command -v openssl >/dev/null || { log "openssl is needed for the TLS listener"; exit 1; }
  rm -rf "$TLS" && mkdir -p "$TLS"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -subj /CN=kappa-test-ca -days 3650 -keyout "$TLS/ca.key" -out "$TLS/ca.crt" 2>/dev/null
  openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout "$TLS/broker.key" -out "$TLS/broker.csr" 2>/dev/null
  openssl x509 -req -in "$TLS/broker.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost') -out "$TLS/broker.crt" 2>/dev/null
  # Kafka's PEM key store: the PKCS#8 private key and the certificate chain in one file.
  openssl pkcs8 -topk8 -nocrypt -in "$TLS/broker.key" -out "$TLS/broker.p8"
  cat "$TLS/broker.p8" "$TLS/broker.crt" "$TLS/ca.crt" >"$TLS/broker.pem"
  chmod 600 "$TLS"/*.key "$TLS"/*.p8 "$TLS/broker.pem"
}

client_cert() { # name: a client key and certificate signed by the test CA, printed as PEM (key, then certificate)
  local name=$1 dir; dir=$(mktemp -d)
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$dir/key" -out "$dir/csr" 2>/dev/null
  openssl x509 -req -in "$dir/csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" -CAcreateserial -days 1 -out "$dir/crt" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$dir/key"
  cat "$dir/crt"
  rm -rf "$dir"
}

up() {
  local add_user=0
  if alive && answers; then
    if current; then log "already running"; echo "$BOOTSTRAP"; return; fi
    log "the running broker has no SASL_PLAINTEXT listener on $SASL_PORT: restarting it with one"
    down
    add_user=1 # formatted before the SASL listener existed: without the format-time user
  fi
  ensure_tools
  mkdir -p "$STATE"
  fetch_jars
  if alive; then
    log "already starting (PID $(cat "$PIDFILE"))"
  else
    if answers; then log "something else answers on $BOOTSTRAP (not PID file $PIDFILE)"; exit 1; fi
    make_tls
    write_config
    format_storage
    start
  fi
  wait_ready 120
  if [[ ${add_user:-0} == 1 ]]; then
    log "adding the SCRAM-SHA-512 user $SCRAM_USER"
    kjava -Dkappa.kafka.loglevel=WARN kafka.admin.ConfigCommand --bootstrap-server "$BOOTSTRAP" --alter \
      --add-config "SCRAM-SHA-512=[password=$SCRAM_PASSWORD]" --entity-type users --entity-name "$SCRAM_USER" >&2
  fi
  log "ready: $BOOTSTRAP"
  echo "$BOOTSTRAP"
}

down() {
  if alive; then
    local pid; pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "PID $pid ignored SIGTERM for 20 s: SIGKILL"; kill -9 "$pid" 2>/dev/null || true
    elif [[ -f "$CDS_ARCHIVE.tmp" ]]; then
      mv "$CDS_ARCHIVE.tmp" "$CDS_ARCHIVE" # written by the JVM as it exited
    fi
    log "stopped"
  else
    log "not running"
  fi
  rm -f "$PIDFILE" "$CDS_ARCHIVE.tmp"
}

case "${1:-}" in
  up) up ;;
  fetch) ensure_tools; fetch_jars ;;
  down) down ;;
  status) answers ;;
  env)
    echo "export KAPPA_KAFKA_BOOTSTRAP=$BOOTSTRAP KAPPA_KAFKA_SASL_BOOTSTRAP=$SASL_BOOTSTRAP" \
      "KAPPA_KAFKA_SSL_BOOTSTRAP=$SSL_BOOTSTRAP KAPPA_KAFKA_CA=$TLS/ca.crt"
    ;;
  client-cert) client_cert "${2:?usage: $0 client-cert NAME}" ;;
  wipe) down; rm -rf "$STATE" ;;
  *) echo "usage: $0 up|fetch|down|status|env|wipe|client-cert NAME" >&2; exit 2 ;;
esac
