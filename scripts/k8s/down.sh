#!/usr/bin/env bash
# Stops what up.sh started: the node agent (which stops its pods and removes their network
# namespaces and its bridge) and the control plane.
#
#   scripts/k8s/down.sh [DIR]          # DIR defaults to /tmp/osprey-k8s
set -uo pipefail
cd "$(dirname "$0")/../.."
DIR=$(realpath -m "${1:-/tmp/osprey-k8s}")
if [[ -f "$DIR/node-agent.pid" ]]; then
  pid=$(cat "$DIR/node-agent.pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null
  rm -f "$DIR/node-agent.pid"
fi
scripts/k8s/stop-cluster.sh "$DIR"
