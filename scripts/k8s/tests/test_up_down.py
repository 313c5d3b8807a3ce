"""scripts/k8s/up.sh and down.sh, the one-command local cluster for people: up prints a
kubeconfig whose cluster has a Ready node and Osprey's CRD; down stops every process and removes
the node's bridge. Needs root and iproute2; skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from agent_harness import K8S

REPO = os.path.dirname(os.path.dirname(K8S))


def test_up_then_down(tmp_path):
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("the node agent needs root, iproute2 and nsenter")
    if subprocess.run(["ip", "link", "show", "osprey-br0"], capture_output=True).returncode == 0:
        pytest.skip("osprey-br0 exists: a local cluster from up.sh is running on this machine")
    d = tmp_path / "k8s"
    up = subprocess.run([os.path.join(K8S, "up.sh"), str(d)], capture_output=True, text=True, timeout=1800)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        kubeconfig = up.stdout.strip().splitlines()[-1]
        assert kubeconfig == str(d / "kubeconfig") and os.path.exists(kubeconfig)
        kubectl = next(line.split("=", 1)[1] for line in subprocess.run(
            [os.path.join(K8S, "build-apiserver.sh")], capture_output=True, text=True, check=True).stdout.splitlines()
            if line.startswith("KUBECTL="))
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        nodes = subprocess.run([kubectl, "get", "nodes", "--no-headers"], env=env, capture_output=True, text=True,
                               timeout=60).stdout
        assert "osprey-node-0" in nodes and " Ready " in nodes, nodes
        crd = subprocess.run([kubectl, "get", "crd", "inferenceservices.serving.osprey.dev"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert crd.returncode == 0, crd.stderr
        pids = [int(p) for p in (d / "pids").read_text().split()] + [int((d / "node-agent.pid").read_text())]
    finally:
        down = subprocess.run([os.path.join(K8S, "down.sh"), str(d)], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", pid
    assert subprocess.run(["ip", "link", "show", "osprey-br0"], capture_output=True).returncode != 0
