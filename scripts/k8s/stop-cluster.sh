#!/usr/bin/env bash
# Stops what start-cluster.sh DIR started; the same as stop-apiserver.sh (which stops every
# component it finds in DIR/pids).
#
#   scripts/k8s/stop-cluster.sh [--keep-logs] DIR
set -euo pipefail
exec "$(dirname "$0")/stop-apiserver.sh" "$@"
