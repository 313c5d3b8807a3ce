"""The controller itself as pods from deploy/: its Deployment (two replicas, leader election
through a Lease) runs on the test cluster with the node agent's in-cluster API access (a
service account token, KUBERNETES_SERVICE_HOST), one replica leads and is Ready, it serves an
InferenceService end to end, and when the leader's pod is deleted another replica takes the
Lease and keeps reconciling. Needs root, iproute2 and target/debug/osprey; skipped otherwise."""

from __future__ import annotations

import json
import os

import pytest

from agent_harness import full_cluster, wait_for
from node_agent.api import Api, ApiConfig
from test_e2e_inferenceservice import (OSPREY, PREDICTOR, REPO, answers, isvc_ready, kubectl, ready_pods,
                                       reference, serve_iris)

BRIDGE, CIDR, GATEWAY, NODE = "ospc-br0", "10.249.0.0/16", "10.249.0.1", "osprey-ctl-node"
CONTROLLER = "app.kubernetes.io/name=osprey-controller"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from full_cluster(tmp_path_factory.mktemp("k8s-ctl"), BRIDGE, CIDR, NODE, OSPREY,
                           ["--api-access", "--cpu", "16", "--memory", "32Gi"], extra_sans=f"IP:{GATEWAY}")


def leader(api: Api) -> str | None:
    lease = api.get_or_none("/apis/coordination.k8s.io/v1/namespaces/osprey-system/leases/osprey-controller")
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def test_the_controller_runs_as_pods_with_leader_election(cluster, tmp_path):
    d, agent = cluster
    api = Api(ApiConfig.from_env_file(os.path.join(d, "env")))
    deploy = os.path.join(REPO, "deploy")
    kubectl(d, "apply", "-f", os.path.join(deploy, "crds"))
    kubectl(d, "apply", "-f", os.path.join(deploy, "rbac.yaml"), "-f", os.path.join(deploy, "controller.yaml"))

    def one_leader_ready():
        pods = [p for p in api.get("/api/v1/namespaces/osprey-system/pods", labelSelector=CONTROLLER)["items"]
                if (p.get("status") or {}).get("phase") == "Running"]
        ready = ready_pods(api, "osprey-system", CONTROLLER)
        holder = leader(api)
        return (pods, ready[0]) if len(pods) == 2 and len(ready) == 1 and holder == ready[0]["metadata"]["name"] else None

    pods, first = wait_for(one_leader_ready, 120, "two controller pods, the Lease holder Ready")
    for p in pods:
        statuses = p["status"]["containerStatuses"]
        assert statuses[0]["restartCount"] == 0, statuses

    ns = "e2e-ctl"
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    serve_iris(d, api, ns, tmp_path)
    _, labels = reference()
    pod = ready_pods(api, ns, PREDICTOR)[0]
    assert answers(pod) == labels

    # The leader's pod goes; another replica takes the Lease and reconciles the next change.
    api.delete(f"/api/v1/namespaces/osprey-system/pods/{first['metadata']['name']}", {"gracePeriodSeconds": 1})
    new = wait_for(lambda: (lambda h: h if h and h != first["metadata"]["name"] else None)(leader(api)), 120,
                   "another replica to take the Lease")
    assert new != first["metadata"]["name"]
    kubectl(d, "patch", "-n", ns, "inferenceservice", "iris", "--type", "merge",
            "-p", json.dumps({"spec": {"predictor": {"minReplicas": 2}}}))
    wait_for(lambda: len(ready_pods(api, ns, PREDICTOR)) == 2 and isvc_ready(api, ns, "iris"), 180,
             "the new leader to scale the InferenceService to two ready pods")
