#!/usr/bin/env bash
# Starts a throw-away Kubernetes control plane for tests (test infrastructure): etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler v1.20.2 on free 127.0.0.1 ports, waits until all serve,
# and exits 0 leaving them running. No kubelet: Pods are bound to Nodes but run only if a node agent
# runs them. Same as `start-apiserver.sh --cluster DIR`; see that script and README.md.
#
#   scripts/k8s/start-cluster.sh DIR     # prints DIR/kubeconfig on stdout
#   scripts/k8s/stop-cluster.sh DIR      # stops everything and removes the state
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
exec "$(dirname "$0")/start-apiserver.sh" --cluster "$1"
