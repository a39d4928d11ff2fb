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
  echo "supervise: $(basename "$1") exited with $code at $(date -u +%FT%TZ); restarting in 2 s" >&2
  sleep 2
done
