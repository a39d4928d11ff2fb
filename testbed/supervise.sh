#!/usr/bin/env bash
# Runs a command again whenever it exits, as a Deployment's restartPolicy: Always would: `make run`'s operator
# runs under it, so that a crash (the operator is level-triggered and picks up where it was) does not stop the
# story. SIGTERM stops the command and this loop.
#   testbed/supervise.sh COMMAND [ARGS...]
set -uo pipefail
child=""
trap '[[ -n $child ]] && kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
while true; do
  "$@" &
  child=$!
  wait "$child"
  code=$?
  how="exited with $code"
  # 128+N: killed by signal N. A segfault in librdkafka's threads prints no stack: this line is all it leaves.
  if ((code > 128)); then how="was killed by SIG$(kill -l $((code - 128)) 2>/dev/null) (exit code $code)"; fi
  echo "supervise: $(basename "$1") $how at $(date -u +%FT%TZ); restarting in 2 s" >&2
  sleep 2
done
