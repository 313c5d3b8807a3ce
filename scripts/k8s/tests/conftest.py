"""Fixtures for the test node agent's tests: a real kube-apiserver (start-apiserver.sh) and the
agent as a subprocess on its own bridge and pod CIDR. Needs root and `ip`; skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from agent_harness import BRIDGE, CIDR, K8S, NODE, AgentProcess, HostLock  # noqa: F401

from node_agent.api import Api, ApiConfig, ApiError


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("the node agent needs root, iproute2 and nsenter")
    d = tmp_path_factory.mktemp("k8s")
    env = {**os.environ, "OSPREY_K8S_OWNER_PID": str(os.getpid())}
    res = subprocess.run([os.path.join(K8S, "start-apiserver.sh"), str(d)], env=env, capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        pytest.fail(f"start-apiserver.sh failed:\n{res.stderr[-3000:]}")
    try:
        yield str(d)
    finally:
        subprocess.run([os.path.join(K8S, "stop-apiserver.sh"), str(d)], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def api(cluster) -> Api:
    return Api(ApiConfig.from_env_file(os.path.join(cluster, "env")))


@pytest.fixture(scope="session")
def host_lock(cluster):
    lock = HostLock()
    try:
        yield
    finally:
        lock.release()


@pytest.fixture(scope="session")
def agent(cluster, api, host_lock, tmp_path_factory):
    state = str(tmp_path_factory.mktemp("agent") / "state")
    a = AgentProcess(os.path.join(cluster, "env"), state, BRIDGE, CIDR, NODE)
    try:
        yield a
    finally:
        rc = a.stop()
        print(f"agent exited {rc}; log tail:\n{a.tail(15)}")


@pytest.fixture
def ns(api, agent, request):
    """A fresh namespace per test; its pods are force-deleted afterwards."""
    name = "t-" + uuid.uuid4().hex[:8]
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    try:
        for p in api.get(f"/api/v1/namespaces/{name}/pods").get("items", []):
            api.delete(f"/api/v1/namespaces/{name}/pods/{p['metadata']['name']}", {"gracePeriodSeconds": 0})
    except ApiError:
        pass
