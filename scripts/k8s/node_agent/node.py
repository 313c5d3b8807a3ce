"""Node registration and heartbeats.

v1.20's node lifecycle controller (kube-controller-manager) takes a node's health from the newer
of its Ready condition's lastHeartbeatTime and its Lease's renewTime (kube-node-lease namespace,
NodeLease GA since 1.17); a node is marked Unknown/tainted after --node-monitor-grace-period (40 s)
without either. The agent renews the Lease every `lease_interval` seconds (kubelet: 10 s) and posts
node status every `status_interval` seconds (kubelet: on change or every 5 min).
"""

from __future__ import annotations

import logging
import platform
import time

from .api import Api, ApiError
from .status import now_iso

log = logging.getLogger("node_agent.node")
LEASE_NS = "kube-node-lease"
VERSION = "v1.20.2"


def micro_now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}Z"


class Node:
    def __init__(self, api: Api, name: str, host_ip: str, capacity: dict, labels: dict, taints: list):
        self.api = api
        self.name = name
        self.host_ip = host_ip
        self.capacity = capacity
        self.labels = labels
        self.taints = taints
        self.uid = ""

    def _conditions(self) -> list[dict]:
        t = now_iso()
        out = []
        for kind, reason, msg in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ):
            out.append({"type": kind, "status": "False", "reason": reason, "message": msg, "lastHeartbeatTime": t, "lastTransitionTime": self._since})
        out.append({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "osprey test node agent is posting ready status", "lastHeartbeatTime": t, "lastTransitionTime": self._since})
        return out

    def _status(self) -> dict:
        machine = platform.machine()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
        return {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": self._conditions(),
            "addresses": [{"type": "InternalIP", "address": self.host_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": platform.release(),
                "osImage": "osprey test node agent",
                "containerRuntimeVersion": "osprey-agent://0.1",
                "kubeletVersion": VERSION,
                "kubeProxyVersion": VERSION,
                "operatingSystem": "linux",
                "architecture": arch,
            },
        }

    def register(self) -> None:
        self._since = now_iso()
        machine = platform.machine()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": arch,
            "osprey.dev/test-node-agent": "true",
            **self.labels,
        }
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": labels}, "spec": {}}
        if self.taints:
            body["spec"]["taints"] = self.taints
        try:
            node = self.api.post("/api/v1/nodes", body)
            log.info("registered node %s", self.name)
        except ApiError as e:
            if e.status != 409:
                raise
            node = self.api.merge_patch(f"/api/v1/nodes/{self.name}", {"metadata": {"labels": labels}})
            log.info("node %s already registered; taking it over", self.name)
        self.uid = node["metadata"]["uid"]
        self.post_status()
        self.renew_lease()

    def post_status(self) -> None:
        self.api.merge_patch(f"/api/v1/nodes/{self.name}/status", {"status": self._status()})

    def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{self.name}"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro_now()}
        try:
            self.api.merge_patch(path, {"spec": spec})
            return
        except ApiError as e:
            if e.status != 404:
                raise
        self._ensure_namespace()
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": LEASE_NS,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}],
            },
            "spec": spec,
        }
        try:
            self.api.post(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases", lease)
        except ApiError as e:
            if e.status != 409:
                raise

    def _ensure_namespace(self) -> None:
        try:
            self.api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NS}})
        except ApiError as e:
            if e.status != 409:
                raise

    def unregister(self) -> None:
        for path in (f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{self.name}", f"/api/v1/nodes/{self.name}"):
            try:
                self.api.delete(path)
            except (ApiError, OSError) as e:
                log.warning("delete %s: %s", path, e)
