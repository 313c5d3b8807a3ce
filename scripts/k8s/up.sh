#!/usr/bin/env bash
# A one-command local Kubernetes to try the Osprey controller without a real cluster (test
# infrastructure, not a product: see scripts/k8s/README.md). Starts etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler on 127.0.0.1 (start-cluster.sh), the test node agent
# as one Node (pods run as local processes in their own network namespaces: needs root), and
# applies Osprey's CRDs and RBAC from deploy/. Prints the kubeconfig to use; `down.sh DIR` stops
# everything.
#
#   scripts/k8s/up.sh [DIR]            # DIR defaults to /tmp/osprey-k8s
#   export KUBECONFIG=DIR/kubeconfig
#   target/debug/osprey controller --leader-election false &   # or: kubectl apply -f deploy/controller.yaml
#   kubectl apply -f my-inferenceservice.yaml
#
# Pods of the `ghcr.io/osprey/osprey` image run the built target/debug/osprey (cargo build first;
# OSPREY_BIN overrides); see the node agent's image table.
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$(realpath -m "${1:-/tmp/osprey-k8s}")
[[ $(id -u) -eq 0 ]] || { echo "up.sh: the node agent needs root (network namespaces)" >&2; exit 1; }
[[ -x .venv/bin/python ]] || bash scripts/setup.sh >&2
mkdir -p "$DIR"
# Pods reach the API server through the node's gateway (10.244.0.1): deploy/controller.yaml runs.
OSPREY_K8S_EXTRA_SANS=IP:10.244.0.1 scripts/k8s/start-cluster.sh "$DIR" >/dev/null
setsid .venv/bin/python scripts/k8s/node-agent.py --env-file "$DIR/env" --node osprey-node-0 \
  --state-dir "$DIR/node" --cpu "$(nproc)" --memory 16Gi --api-access </dev/null >"$DIR/node-agent.log" 2>&1 &
echo $! >"$DIR/node-agent.pid"
for _ in $(seq 1 300); do
  [[ -e "$DIR/node/ready" ]] && break
  kill -0 "$(cat "$DIR/node-agent.pid")" 2>/dev/null || { tail -n 20 "$DIR/node-agent.log" >&2; exit 1; }
  sleep 0.2
done
[[ -e "$DIR/node/ready" ]] || { echo "up.sh: the node agent did not start" >&2; exit 1; }
KUBECTL=$(scripts/k8s/build-apiserver.sh | sed -n 's/^KUBECTL=//p')
KUBECONFIG="$DIR/kubeconfig" "$KUBECTL" apply -f deploy/crds -f deploy/rbac.yaml >&2
cat >&2 <<MSG
up.sh: a control plane and one node (osprey-node-0, pods on bridge osprey-br0, 10.244.0.0/16).
  export KUBECONFIG=$DIR/kubeconfig
  kubectl: $KUBECTL
  pod logs: $DIR/node/<namespace>_<pod>/<container>.log
  stop: scripts/k8s/down.sh $DIR
MSG
echo "$DIR/kubeconfig"
