#!/usr/bin/env bash
# A real Apache Flink standalone session cluster on loopback: one JobManager (REST on 127.0.0.1) and one TaskManager
# with 2 slots, checkpoints and savepoints on the local file system. Flink comes from PyPI's apache-flink-libraries wheel
# (flink-dist, table planner and runtime, log4j), the connectors from Maven Central (testbed/flink/pom.xml). No bin
# scripts: the wheel has none, so the JVMs are started with `java -cp` on the entry-point classes, as bin/jobmanager.sh
# and bin/taskmanager.sh would.
#
#   testbed/flink.sh up          fetch (cached) and start; idempotent; prints the REST address
#   testbed/flink.sh down        stop what `up` started, by PID; idempotent
#   testbed/flink.sh status      exit 0 when both processes run and the REST API reports a registered TaskManager
#   testbed/flink.sh env         print `export KAPPA_FLINK_URL=...`
#   testbed/flink.sh wipe        down, then delete the cluster's state (config, logs, checkpoints, savepoints)
#   testbed/flink.sh runner-jar  build (cached) the SQL runner of testbed/flink/sql-runner and print the jar's path
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FLINK_VERSION="${FLINK_VERSION:-2.3.0}" # the PyPI apache-flink-libraries release; keep equal to sql-runner/pom.xml
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
STATE="${KAPPA_TESTBED_DIR:-$CACHE/testbed}/flink"
DIST="$CACHE/flink/$FLINK_VERSION" # the Flink home: lib/ (+ connectors), opt/, plugins/, bin/bash-java-utils.jar
WHEELS="$CACHE/flink/wheels"
RUNNER_TARGET="$CACHE/flink/sql-runner/$FLINK_VERSION"
PORT="${KAPPA_FLINK_PORT:-18081}"
RPC_PORT="${KAPPA_FLINK_RPC_PORT:-16123}" # not Flink's 6123, to stay clear of a Flink someone else runs
URL="http://127.0.0.1:$PORT"
CONF="$STATE/conf"
LOGS="$STATE/log"
# Added to both JVMs. The defaults favour start-up time, as in kafka.sh: C1 only and the serial collector.
JVM_OPTS="${KAPPA_FLINK_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true}"
# env.java.opts.all of Flink 2.x's default config (config.yaml inside flink-dist): what Flink needs on Java 17.
JAVA17_OPTS=(
  --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED
  --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED
  --add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED
  --add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED
  --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.text=ALL-UNNAMED
  --add-opens=java.base/java.time=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)
# Class-data sharing, as in kafka.sh: each JVM records its loaded classes when it exits (on `down`), later runs map
# them. KAPPA_FLINK_CDS=0 turns it off. An archive belongs to the jars and the JDK; the JVM ignores a mismatched one.
CDS="${KAPPA_FLINK_CDS:-1}"
JM_CLASS=org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint
TM_CLASS=org.apache.flink.runtime.taskexecutor.TaskManagerRunner

log() { echo "flink: $*" >&2; }

main_class() { if [[ $1 == jobmanager ]]; then echo "$JM_CLASS"; else echo "$TM_CLASS"; fi; }

# The PID file names a live process running our entry point (guards against a stale file and PID reuse).
alive() { # jobmanager|taskmanager
  local pidfile="$STATE/$1.pid"
  [[ -f "$pidfile" ]] || return 1
  local pid cmdline; pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null || return 1
  # No `| grep -q`: on a command line this long, tr gets SIGPIPE when grep quits early, and pipefail fails the test.
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *" $(main_class "$1") "* ]]
}

overview() { curl -sf --max-time 2 "$URL/overview" 2>/dev/null; }

field() { # json name: an integer field of a flat JSON object
  local v; v=$(grep -o "\"$2\":[0-9]*" <<<"$1" | head -1) || return 1
  echo "${v#*:}"
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The REST API answers and at least one TaskManager is registered (its slots may be in use).
answers() {
  local o; o=$(overview) || return 1
  [[ $(field "$o" taskmanagers) -ge 1 ]]
}

# A freshly started cluster is ready when its TaskManager registered all its slots, and all are free.
ready() {
  local o; o=$(overview) || return 1
  [[ $(field "$o" taskmanagers) -ge 1 && $(field "$o" slots-available) -ge 2 ]]
}

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v curl >/dev/null || missing+=(curl)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]} from Debian"
  if [[ $(id -u) -ne 0 ]]; then log "missing ${missing[*]} and I am not root: apt-get install ${missing[*]}"; exit 1; fi
  (apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null)
}

# The Flink home, built once per Flink version and connector pom: the wheel's jars, then the connectors into lib/.
fetch_dist() {
  local stamp; stamp="$FLINK_VERSION $(sha256sum "$HERE/flink/pom.xml" | cut -c1-64)"
  [[ -f "$DIST/.complete" && $(cat "$DIST/.complete") == "$stamp" ]] && return
  ensure_tools
  local wheel="$WHEELS/apache_flink_libraries-$FLINK_VERSION-py2.py3-none-any.whl"
  if [[ ! -f "$wheel" ]]; then
    log "fetching apache-flink-libraries==$FLINK_VERSION from PyPI (about 330 MB)"
    rm -rf "$WHEELS/tmp"; mkdir -p "$WHEELS/tmp"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary :all: \
      "apache-flink-libraries==$FLINK_VERSION" -d "$WHEELS/tmp" >&2
    mv "$WHEELS/tmp/$(basename "$wheel")" "$wheel"
    rm -rf "$WHEELS/tmp"
  fi
  # Into a temporary directory first, so that an interrupted unpack or download never looks complete.
  log "unpacking Flink $FLINK_VERSION into $DIST"
  rm -rf "$DIST.tmp"; mkdir -p "$DIST.tmp"
  python3 - "$wheel" "$DIST.tmp" <<'PY'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(("pyflink/lib/", "pyflink/opt/", "pyflink/plugins/")) or name == "pyflink/bin/bash-java-utils.jar":
            if name.endswith("/"):
                continue
            target = os.path.join(out, name[len("pyflink/"):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            if name.endswith(".sh"):
                os.chmod(target, 0o755)
PY
  [[ -f "$DIST.tmp/lib/flink-dist-$FLINK_VERSION.jar" ]] || { log "the wheel has no lib/flink-dist-$FLINK_VERSION.jar"; exit 1; }
  log "fetching the connectors from Maven Central (testbed/flink/pom.xml)"
  if ! mvn -q -B -f "$HERE/flink/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    "-DoutputDirectory=$DIST.tmp/lib" >"$CACHE/flink/mvn.log" 2>&1; then
    cat "$CACHE/flink/mvn.log" >&2; log "maven failed; see $CACHE/flink/mvn.log"; exit 1
  fi
  echo "$stamp" >"$DIST.tmp/.complete"
  rm -rf "$DIST"; mv "$DIST.tmp" "$DIST"
}

classpath() { # lib/*.jar in name order with flink-dist last, as bin/config.sh builds it
  local jars=() dist="" j
  for j in "$DIST"/lib/*.jar; do
    if [[ $(basename "$j") == flink-dist*.jar ]]; then dist=$j; else jars+=("$j"); fi
  done
  jars+=("$dist")
  local IFS=:; echo "${jars[*]}"
}

write_config() {
  mkdir -p "$CONF" "$LOGS" "$STATE/tmp" "$STATE/web" "$STATE/work" "$STATE/checkpoints" "$STATE/savepoints"
  cat >"$CONF/config.yaml" <<YAML
# Written by testbed/flink.sh on every start; edits are lost.
jobmanager.rpc.address: 127.0.0.1
jobmanager.rpc.port: $RPC_PORT
jobmanager.bind-host: 127.0.0.1
jobmanager.memory.process.size: 768m
jobmanager.execution.failover-strategy: region

taskmanager.host: 127.0.0.1
taskmanager.bind-host: 127.0.0.1
taskmanager.resource-id: kappa-testbed-tm-1
taskmanager.numberOfTaskSlots: 2
# 1 GiB is enough for 2 slots of small SQL jobs. Managed memory only serves RocksDB and batch operators; the
# default fraction (0.4) would leave the task heap 26 MiB.
taskmanager.memory.process.size: 1024m
taskmanager.memory.managed.size: 64m

parallelism.default: 1

rest.address: 127.0.0.1
rest.bind-address: 127.0.0.1
rest.port: $PORT

# The TaskManager retries a failed registration after this delay (default 10 s): it usually starts before the
# JobManager's RPC endpoint is up, so this decides the time to ready.
cluster.registration.error-delay: 1s

# Nothing in /tmp: Flink's temporary files, the web upload directory, and the working directories.
io.tmp.dirs: $STATE/tmp
web.tmpdir: $STATE/web
process.working-dir: $STATE/work

execution.checkpointing.interval: 2s
execution.checkpointing.dir: file://$STATE/checkpoints
execution.checkpointing.savepoint-dir: file://$STATE/savepoints
YAML
}

# The JVM memory flags and the -D settings Flink derives from the config: the two result lines of BashJavaUtils, as
# bin/config.sh reads them. They depend on the config alone, so they are kept next to it (a JVM run saved per start).
resource_params() { # GET_JM_RESOURCE_PARAMS|GET_TM_RESOURCE_PARAMS -> two lines: JVM params, dynamic configs
  local cached="$CONF/$1" key out results
  key="$FLINK_VERSION $(sha256sum "$CONF/config.yaml" | cut -c1-64)"
  if [[ -f "$cached" && $(head -1 "$cached") == "$key" ]]; then tail -n +2 "$cached"; return; fi
  if ! out=$(java -cp "$DIST/bin/bash-java-utils.jar:$DIST/lib/flink-dist-$FLINK_VERSION.jar" \
    org.apache.flink.runtime.util.bash.BashJavaUtils "$1" --configDir "$CONF" 2>&1); then
    echo "$out" >&2; log "BashJavaUtils $1 failed"; exit 1
  fi
  results=$(grep '^BASH_JAVA_UTILS_EXEC_RESULT:' <<<"$out" | sed 's/^BASH_JAVA_UTILS_EXEC_RESULT://')
  if [[ $(wc -l <<<"$results") -ne 2 ]]; then echo "$out" >&2; log "unexpected output of BashJavaUtils $1"; exit 1; fi
  printf '%s\n%s\n' "$key" "$results" >"$cached"
  echo "$results"
}

start() { # jobmanager|taskmanager resource-command main-class args...
  local name=$1 cmd=$2 main=$3; shift 3
  local params jvm dyn opts
  params=$(resource_params "$cmd")
  # Word splitting of the flag strings, as bin/config.sh does: "-D key=value" are two arguments.
  read -ra jvm <<<"$(head -1 <<<"$params")"
  read -ra dyn <<<"$(tail -1 <<<"$params")"
  read -ra opts <<<"$JVM_OPTS"
  local archive="$DIST/$name.jsa"
  if [[ $CDS == 1 && -f "$archive" ]]; then opts+=("-XX:SharedArchiveFile=$archive")
  elif [[ $CDS == 1 ]]; then rm -f "$archive.tmp"; opts+=("-XX:ArchiveClassesAtExit=$archive.tmp"); fi
  # From the state directory, with the wheel's plugins/ (metric reporters) where Flink looks for them.
  cd "$STATE"
  FLINK_PLUGINS_DIR="$DIST/plugins" FLINK_CONF_DIR="$CONF" FLINK_LIB_DIR="$DIST/lib" FLINK_OPT_DIR="$DIST/opt" \
    nohup java "${jvm[@]}" "${opts[@]}" "${JAVA17_OPTS[@]}" \
    "-Dlog.file=$LOGS/$name.log" "-Dlog4j.configurationFile=file:$HERE/flink/log4j.properties" \
    "-Djava.io.tmpdir=$STATE/tmp" \
    -cp "$(classpath)" "$main" --configDir "$CONF" "$@" "${dyn[@]}" >"$LOGS/$name.out" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
  log "started $name PID $!; log $LOGS/$name.log"
}

wait_for() { # seconds check
  local secs=$1 check=$2 name
  for _ in $(seq $((secs * 5))); do
    "$check" && return 0
    for name in jobmanager taskmanager; do
      # Not alive(): right after the fork the child's command line is still bash's.
      if ! kill -0 "$(cat "$STATE/$name.pid")" 2>/dev/null; then
        log "the $name exited; see $LOGS/$name.log and $name.out"; tail -n 30 "$LOGS/$name.out" "$LOGS/$name.log" >&2 || true
        return 1
      fi
    done
    sleep 0.2
  done
  log "no TaskManager with 2 free slots at $URL/overview in ${secs}s; see $LOGS"
  tail -n 20 "$LOGS"/*.log >&2 || true; return 1
}

up() {
  if alive jobmanager && alive taskmanager && answers; then
    log "already running"; echo "$URL"; return
  fi
  if ! command -v java >/dev/null || ! command -v curl >/dev/null; then ensure_tools; fi
  mkdir -p "$STATE"
  fetch_dist
  if alive jobmanager && alive taskmanager; then
    log "already starting"
    wait_for 120 answers
  else
    # Half a cluster (one process died): restart both, so that the TaskManager registers with a fresh JobManager.
    stop_all
    local port
    for port in "$PORT" "$RPC_PORT"; do
      if listening "$port"; then log "something else listens on 127.0.0.1:$port (not PID files in $STATE)"; exit 1; fi
    done
    # Temporary files only (a killed JVM leaves its extracted RPC jar, 23 MB, and the like behind).
    rm -rf "$STATE/tmp" "$STATE/web"
    write_config
    start jobmanager GET_JM_RESOURCE_PARAMS "$JM_CLASS" --executionMode cluster
    start taskmanager GET_TM_RESOURCE_PARAMS "$TM_CLASS"
    # Stop what failed to come up, so that no half cluster is left behind (the logs stay).
    wait_for 120 ready || { stop_all; exit 1; }
  fi
  log "ready: $URL"
  echo "$URL"
}

stop_all() { # TERM both at once (a JVM takes 1.5-2 s to shut down), wait, then KILL
  local name pids=() names=()
  for name in taskmanager jobmanager; do
    if alive "$name"; then pids+=("$(cat "$STATE/$name.pid")"); names+=("$name"); fi
  done
  if [[ ${#pids[@]} -gt 0 ]]; then
    kill "${pids[@]}" 2>/dev/null || true
    # A JVM that writes its class archive as it exits (the first run) may take half a minute on a busy machine.
    local i secs=20
    if [[ $CDS == 1 ]] && compgen -G "$DIST/*.jsa.tmp" >/dev/null; then secs=90; fi
    for _ in $(seq $((secs * 10))); do
      for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null || unset "pids[$i]"; done
      [[ ${#pids[@]} -eq 0 ]] && break
      sleep 0.1
    done
    if [[ ${#pids[@]} -gt 0 ]]; then
      # A killed JVM may leave half a class archive: the .tmp files go below.
      log "PID ${pids[*]} ignored SIGTERM for $secs s: SIGKILL"; kill -9 "${pids[@]}" 2>/dev/null || true
    else
      for name in "${names[@]}"; do # written by the JVM as it exited
        if [[ -f "$DIST/$name.jsa.tmp" ]]; then mv "$DIST/$name.jsa.tmp" "$DIST/$name.jsa"; fi
      done
    fi
    log "stopped ${names[*]}"
  fi
  rm -f "$STATE/jobmanager.pid" "$STATE/taskmanager.pid" "$DIST"/*.jsa.tmp
}

down() {
  if ! alive jobmanager && ! alive taskmanager; then
    log "not running"; rm -f "$STATE/jobmanager.pid" "$STATE/taskmanager.pid"; return
  fi
  stop_all
}

# The SQL runner (testbed/flink/sql-runner): built against the same Flink version, once per source change.
runner_jar() {
  local src="$HERE/flink/sql-runner" jar="$RUNNER_TARGET/kappa-sql-runner.jar" stamp
  stamp=$(cd "$src" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
  stamp="$FLINK_VERSION $stamp"
  if [[ ! -f "$jar" || ! -f "$jar.stamp" || $(cat "$jar.stamp") != "$stamp" ]]; then
    command -v mvn >/dev/null || ensure_tools
    log "building the SQL runner into $RUNNER_TARGET"
    rm -f "$jar.stamp"
    mkdir -p "$RUNNER_TARGET"
    if ! mvn -q -B -f "$src/pom.xml" package "-Dflink.version=$FLINK_VERSION" \
      "-DbuildDirectory=$RUNNER_TARGET/target" >"$RUNNER_TARGET/mvn.log" 2>&1; then
      cat "$RUNNER_TARGET/mvn.log" >&2; log "maven failed; see $RUNNER_TARGET/mvn.log"; exit 1
    fi
    cp "$RUNNER_TARGET/target/kappa-sql-runner.jar" "$jar.tmp" && mv "$jar.tmp" "$jar"
    echo "$stamp" >"$jar.stamp"
  fi
  echo "$jar"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) alive jobmanager && alive taskmanager && answers ;;
  env) echo "export KAPPA_FLINK_URL=$URL" ;;
  wipe) down; rm -rf "$STATE" ;;
  runner-jar) runner_jar ;;
  *) echo "usage: $0 up|down|status|env|wipe|runner-jar" >&2; exit 2 ;;
esac
