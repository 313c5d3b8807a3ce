"""Osprey's test node agent: registers Nodes with a Kubernetes API server and runs the Pods bound
to them as local processes in per-pod network namespaces. Test infrastructure only; see
scripts/k8s/README.md, "The test node agent"."""
