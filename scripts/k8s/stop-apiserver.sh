#!/usr/bin/env bash
# Stops what start-apiserver.sh DIR or start-cluster.sh DIR started (kube-apiserver, etcd,
# kube-controller-manager, kube-scheduler, the owner watcher) and removes the state it wrote: etcd's
# data, DIR/pki, the kubeconfigs, DIR/env, DIR/pids, and the logs unless --keep-logs. DIR itself is
# left in place. Safe to run twice, or on a half-started DIR.
#
#   scripts/k8s/stop-apiserver.sh [--keep-logs] DIR
set -euo pipefail

keep_logs=0
if [[ "${1:-}" == --keep-logs ]]; then
  keep_logs=1
  shift
fi
[[ $# -eq 1 ]] || { echo "usage: $0 [--keep-logs] DIR" >&2; exit 2; }
[[ -d "$1" ]] || exit 0
DIR="$(cd "$1" && pwd)"

# alive PID: running and not a zombie (an orphan's parent may never reap it).
alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat%% *}" != Z ]]
}

# Only signal PIDs that still belong to what we started (guards against PID reuse).
ours() {
  local cmd
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline")" || return 1
  [[ "$cmd" == *kube-apiserver* || "$cmd" == *etcd* || "$cmd" == *osprey-k8s-watcher* ||
    "$cmd" == *kube-controller-manager* || "$cmd" == *kube-scheduler* ]]
}

if [[ -f "$DIR/pids" ]]; then
  # Newest first: the watcher, the scheduler and controller-manager, kube-apiserver, then etcd.
  mapfile -t pids < <(tac "$DIR/pids")
  live=()
  for pid in "${pids[@]}"; do
    [[ "$pid" =~ ^[0-9]+$ && "$pid" != "$$" ]] || continue
    if ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null && live+=("$pid")
    fi
  done
  for _ in $(seq 100); do
    still=()
    for pid in "${live[@]}"; do
      alive "$pid" && still+=("$pid")
    done
    live=("${still[@]}")
    ((${#live[@]} == 0)) && break
    sleep 0.1
  done
  for pid in "${live[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
fi

if [[ -f "$DIR/env" ]]; then
  data="$(sed -n 's/^ETCD_DATA_DIR=//p' "$DIR/env")"
  case "$data" in
    /dev/shm/osprey-etcd.* | "$DIR/etcd-data") rm -rf "$data" ;;
  esac
fi
rm -rf "$DIR/pki" "$DIR/etcd-data" "$DIR/kubeconfig" "$DIR/env" "$DIR/pids" "$DIR/openssl.log" \
  "$DIR/kube-controller-manager.kubeconfig" "$DIR/kube-scheduler.kubeconfig"
if ((keep_logs == 0)); then
  rm -f "$DIR/etcd.log" "$DIR/kube-apiserver.log" "$DIR/watcher.log" \
    "$DIR/kube-controller-manager.log" "$DIR/kube-scheduler.log"
fi
