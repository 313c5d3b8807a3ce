"""The test node agent against a real kube-apiserver: pods run as processes in their own network
namespaces, with init containers, env, volumes, probes, restarts, deletion and /etc/hosts."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import signal
import subprocess
import time
import urllib.request

import agent_harness
from agent_harness import BRIDGE, CIDR, NODE, AgentProcess, wait_for

from node_agent.api import ApiError


def pod_path(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods/{name}"


def create_pod(api, ns: str, name: str, spec: dict, labels: dict | None = None) -> dict:
    spec = {"nodeName": NODE, "terminationGracePeriodSeconds": 2, **spec}
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}
    return api.post(f"/api/v1/namespaces/{ns}/pods", body)


def get_pod(api, ns: str, name: str) -> dict:
    return api.get(pod_path(ns, name))


def wait_phase(api, ns: str, name: str, phase: str, timeout: float = 30) -> dict:
    return wait_for(
        lambda: (p := get_pod(api, ns, name))["status"].get("phase") == phase and p,
        timeout,
        f"pod {ns}/{name} phase {phase}",
    )


def condition(pod: dict, kind: str) -> str | None:
    for c in pod["status"].get("conditions") or []:
        if c["type"] == kind:
            return c["status"]
    return None


def wait_ready(api, ns: str, name: str, timeout: float = 30) -> dict:
    return wait_for(
        lambda: condition(p := get_pod(api, ns, name), "Ready") == "True" and p, timeout, f"pod {ns}/{name} Ready"
    )


def log_of(agent, ns: str, pod: str, container: str, suffix: str = "") -> str:
    try:
        with open(os.path.join(agent.state_dir, f"{ns}_{pod}", f"{container}.log{suffix}"), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def http_get(url: str, timeout: float = 2) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError as e:  # refused / timed out: not listening yet
        return 0, str(e)


def pid_dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def netns_names() -> list[str]:
    try:
        return [n for n in os.listdir("/run/netns") if n.startswith(BRIDGE + "-")]
    except FileNotFoundError:
        return []


WEB = {"name": "web", "image": "python:3.11", "command": ["python", "-m", "http.server", "8080"]}


def test_node_registered_ready_with_lease(api, agent):
    node = api.get(f"/api/v1/nodes/{NODE}")
    assert condition(node, "Ready") == "True"
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    assert {"type": "InternalIP", "address": "10.245.0.1"} in node["status"]["addresses"]
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"
    first = api.get(lease_path)["spec"]["renewTime"]
    wait_for(lambda: api.get(lease_path)["spec"]["renewTime"] != first, 15, "the lease to be renewed")


def test_pod_gets_own_ip_reachable_from_host(api, agent, ns):
    create_pod(api, ns, "web", {"containers": [{**WEB, "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]})
    pod = wait_ready(api, ns, "web")
    st = pod["status"]
    assert st["phase"] == "Running"
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(CIDR)
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert st["hostIP"] == "10.245.0.1"
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0
    assert "startedAt" in cs["state"]["running"]
    assert cs["containerID"].startswith("osprey-agent://")
    assert cs["imageID"].endswith("/.venv/bin/python")
    status, body = wait_for(lambda: (r := http_get(f"http://{st['podIP']}:8080/"))[0] and r, 10, "HTTP from the pod IP")
    assert status == 200 and "Directory listing" in body
    # A second pod gets another address.
    create_pod(api, ns, "web2", {"containers": [WEB]})
    other = wait_phase(api, ns, "web2", "Running")
    assert other["status"]["podIP"] not in ("", st["podIP"])


def test_init_containers_run_in_order(api, agent, ns):
    mount = [{"name": "data", "mountPath": "/data"}]
    create_pod(api, ns, "init", {
        "restartPolicy": "Never",
        "volumes": [{"name": "data", "emptyDir": {}}],
        "initContainers": [
            {"name": "one", "image": "busybox", "command": ["sh", "-c", "echo one > /data/order"], "volumeMounts": mount},
            {"name": "two", "image": "busybox", "command": ["sh", "-c", "grep -q one /data/order && echo two >> /data/order"], "volumeMounts": mount},
        ],
        "containers": [{"name": "main", "image": "busybox", "command": ["cat", "/data/order"], "volumeMounts": mount}],
    })
    pod = wait_phase(api, ns, "init", "Succeeded")
    inits = pod["status"]["initContainerStatuses"]
    assert [s["name"] for s in inits] == ["one", "two"]
    assert all(s["state"]["terminated"]["exitCode"] == 0 and s["state"]["terminated"]["reason"] == "Completed" for s in inits)
    assert log_of(agent, ns, "init", "main") == "one\ntwo\n"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_failing_init_container_fails_pod(api, agent, ns):
    create_pod(api, ns, "badinit", {
        "restartPolicy": "Never",
        "initContainers": [{"name": "fail", "image": "busybox", "command": ["sh", "-c", "echo failing; exit 1"]}],
        "containers": [{"name": "main", "image": "busybox", "command": ["echo", "must not run"]}],
    })
    pod = wait_phase(api, ns, "badinit", "Failed")
    init = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert init["exitCode"] == 1 and init["reason"] == "Error"
    main = pod["status"]["containerStatuses"][0]
    assert "waiting" in main["state"] and main["restartCount"] == 0
    assert log_of(agent, ns, "badinit", "main") == ""
    assert condition(pod, "Initialized") == "False"


def test_env_and_configmap_volume(api, agent, ns):
    api.post(f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
             "data": {"greeting": "hello", "app.conf": "answer=42\n"}})
    api.post(f"/api/v1/namespaces/{ns}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
             "data": {"token": base64.b64encode(b"s3cret").decode()}})
    mount_path = "/osprey-agent-test-mnt/conf"
    assert not os.path.exists("/osprey-agent-test-mnt")

    def field(path):
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    script = ("echo NAME=$POD_NAME NS=$POD_NS IP=$POD_IP NODE=$NODE TIER=$TIER GREETING=$GREETING TOKEN=$TOKEN "
              "FROM=$CFG_greeting; echo EXPANDED=$(GREETING)-$(POD_NAME) KEPT='$$(GREETING)'; pwd; cat " + mount_path + "/app.conf; sleep 300")
    create_pod(api, ns, "env", {
        "restartPolicy": "Never",
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
        "containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c"], "args": [script], "workingDir": "/proc",
            "env": [
                {"name": "POD_NAME", **field("metadata.name")},
                {"name": "POD_NS", **field("metadata.namespace")},
                {"name": "POD_IP", **field("status.podIP")},
                {"name": "NODE", **field("spec.nodeName")},
                {"name": "TIER", **field("metadata.labels['tier']")},
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "volumeMounts": [{"name": "cfg", "mountPath": mount_path, "readOnly": True}],
        }],
    }, labels={"tier": "backend"})
    pod = wait_phase(api, ns, "env", "Running")
    out = wait_for(lambda: (s := log_of(agent, ns, "env", "main")).count("\n") >= 4 and s, 15, "the container's output")
    ip = pod["status"]["podIP"]
    lines = out.splitlines()
    assert lines[0] == (f"NAME=env NS={ns} IP={ip} NODE={NODE} TIER=backend GREETING=hello TOKEN=s3cret FROM=hello")
    assert lines[1] == "EXPANDED=hello-env KEPT=$(GREETING)"
    assert lines[2] == "/proc"
    assert lines[3] == "answer=42"
    # The mount is private to the pod: the host sees only the (created) empty mount point.
    assert os.listdir(mount_path) == []
    api.delete(pod_path(ns, "env"))
    wait_for(lambda: _gone(api, ns, "env"), 20, "pod env deleted")
    wait_for(lambda: not os.path.exists("/osprey-agent-test-mnt"), 10, "the created mount point to be removed")


def _gone(api, ns, name) -> bool:
    try:
        api.get(pod_path(ns, name))
        return False
    except ApiError as e:
        return e.status == 404


def test_readiness_probe_flips_ready(api, agent, ns):
    create_pod(api, ns, "ready", {
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [{**WEB, "workingDir": "/srv-data", "volumeMounts": [{"name": "data", "mountPath": "/srv-data"}],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1}}],
    })
    pod = wait_phase(api, ns, "ready", "Running")
    ip = pod["status"]["podIP"]
    # The server answers (404 for /ready) but the pod is not Ready.
    wait_for(lambda: http_get(f"http://{ip}:8080/ready")[0] == 404, 15, "the server to answer 404")
    pod = get_pod(api, ns, "ready")
    assert condition(pod, "Ready") == "False"
    assert pod["status"]["containerStatuses"][0]["ready"] is False
    volume = os.path.join(agent.state_dir, "pods", pod["metadata"]["uid"], "volumes", "data")
    with open(os.path.join(volume, "ready"), "w") as f:
        f.write("ok\n")
    pod = wait_ready(api, ns, "ready", 15)
    assert pod["status"]["containerStatuses"][0]["ready"] is True


def test_liveness_failure_restarts_container(api, agent, ns):
    create_pod(api, ns, "live", {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo run; exec sleep 300"],
                        "livenessProbe": {"exec": {"command": ["sh", "-c", "test -f /nonexistent-liveness-file"]},
                                          "periodSeconds": 1, "failureThreshold": 2}}],
    })
    pod = wait_for(lambda: (p := get_pod(api, ns, "live"))["status"].get("containerStatuses", [{}])[0].get("restartCount", 0) >= 1 and p,
                   30, "a restart after liveness failures")
    cs = pod["status"]["containerStatuses"][0]
    last = cs["lastState"]["terminated"]
    assert "Liveness probe failed" in last.get("message", "")
    assert last["exitCode"] != 0
    assert pod["status"]["phase"] == "Running"
    assert log_of(agent, ns, "live", "main", ".1") == "run\n"


def test_restart_never_exit_3_fails(api, agent, ns):
    create_pod(api, ns, "exit3", {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 3"]}]})
    pod = wait_phase(api, ns, "exit3", "Failed")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_missing_program_reports_clear_status(api, agent, ns):
    create_pod(api, ns, "missing", {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["/nonexistent/osprey-missing-program"]}]})
    pod = wait_phase(api, ns, "missing", "Failed")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "StartError" and term["exitCode"] == 128
    assert "/nonexistent/osprey-missing-program" in term["message"]
    # An image the table cannot run and no command: waiting, with the reason.
    create_pod(api, ns, "noentry", {"containers": [{"name": "main", "image": "registry.example/unknown:1.0"}]})
    waiting = wait_for(lambda: get_pod(api, ns, "noentry")["status"].get("containerStatuses", [{}])[0].get("state", {}).get("waiting", {}).get("reason") == "CreateContainerError"
                       and get_pod(api, ns, "noentry")["status"]["containerStatuses"][0]["state"]["waiting"], 15, "CreateContainerError")
    assert "no command specified" in waiting["message"]
    # restartPolicy Always: retried with back-off, the reason stays visible.
    create_pod(api, ns, "crashloop", {"containers": [{"name": "main", "image": "busybox", "command": ["no-such-program-osprey"]}]})
    cs = wait_for(lambda: (c := get_pod(api, ns, "crashloop")["status"].get("containerStatuses", [{}])[0]).get("restartCount", 0) >= 2 and c,
                  20, "restarts with back-off")
    assert cs["lastState"]["terminated"]["reason"] == "StartError"


def test_delete_pod_ignoring_sigterm(api, agent, ns):
    create_pod(api, ns, "stubborn", {"terminationGracePeriodSeconds": 2, "containers": [{
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", "trap '' TERM; sleep 300 & echo pids $$$$ $!; wait; wait; echo survived"]}]})
    pod = wait_phase(api, ns, "stubborn", "Running")
    line = wait_for(lambda: log_of(agent, ns, "stubborn", "main").strip(), 15, "the pids")
    pids = [int(x) for x in line.split()[1:3]]
    assert not any(pid_dead(p) for p in pids)
    netns = [n for n in netns_names() if n.startswith(BRIDGE + "-" + pod["metadata"]["uid"].replace("-", "")[:12])]
    assert len(netns) == 1
    t0 = time.monotonic()
    api.delete(pod_path(ns, "stubborn"))
    wait_for(lambda: _gone(api, ns, "stubborn"), 2 + 20, "the pod object to go away")
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.0, "SIGTERM is ignored: the agent must have waited for the grace period"
    wait_for(lambda: all(pid_dead(p) for p in pids), 5, "the container's processes to die")
    assert netns[0] not in netns_names()
    assert "survived" not in log_of(agent, ns, "stubborn", "main")


def test_etc_hosts_resolves_services(api, agent, ns):
    api.post(f"/api/v1/namespaces/{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "peers"},
             "spec": {"clusterIP": "None", "selector": {"app": "peers"}, "ports": [{"port": 8080}]}})
    api.post(f"/api/v1/namespaces/{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "peers-ip"},
             "spec": {"selector": {"app": "peers"}, "ports": [{"port": 8080}]}})
    create_pod(api, ns, "peer", {"hostname": "peer-0", "subdomain": "peers", "containers": [
        {**WEB, "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}, labels={"app": "peers"})
    peer_ip = wait_ready(api, ns, "peer")["status"]["podIP"]
    names = ["peers", f"peers.{ns}", f"peers.{ns}.svc.cluster.local", "peer-0.peers", "peers-ip"]
    script = f"""
import json, socket, time, urllib.request
names = {names!r}
deadline = time.time() + 20
while True:
    try:
        found = {{n: socket.gethostbyname(n) for n in names}}
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.2)
status = urllib.request.urlopen("http://peer-0.peers:8080/", timeout=5).status
print(json.dumps({{"found": found, "status": status, "self": socket.gethostbyname(socket.gethostname())}}))
"""
    create_pod(api, ns, "client", {"restartPolicy": "Never", "hostname": "client-0", "subdomain": "peers",
                                   "containers": [{"name": "main", "image": "python:3.11", "command": ["python", "-c", script]}]})
    pod = wait_phase(api, ns, "client", "Succeeded", 40)
    result = json.loads(log_of(agent, ns, "client", "main").strip().splitlines()[-1])
    assert result["found"] == {n: peer_ip for n in names}
    assert result["status"] == 200  # pod-to-pod over the bridge
    assert result["self"] == pod["status"]["podIP"]
    with open(os.path.join(agent.state_dir, "pods", get_pod(api, ns, "peer")["metadata"]["uid"], "hosts")) as f:
        own = f.read()
    assert f"{peer_ip}\tpeer-0.peers.{ns}.svc.cluster.local peer-0" in own


def test_agent_exit_cleans_up(api, agent, tmp_path, cluster):
    """A second agent with two Nodes: a pod on its second Node runs; SIGTERM to the agent kills the
    pod's processes, removes its namespaces and bridge, and (--unregister-on-exit) its Nodes."""
    nodes = ["osprey-test-node-b", "osprey-test-node-c"]
    bridge = "ospt-br1"
    b = AgentProcess(os.path.join(cluster, "env"), str(tmp_path / "state"), bridge, "10.247.0.0/16", nodes[0],
                     ["--unregister-on-exit", "--node", nodes[1]])
    try:
        for n in nodes:
            assert condition(api.get(f"/api/v1/nodes/{n}"), "Ready") == "True"
        api.post("/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-c"}, "spec": {
            "nodeName": nodes[1], "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo pid $$$$; exec sleep 300"]}]}})
        pod = wait_phase(api, "default", "on-c", "Running")
        assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network("10.247.0.0/16")
        log = os.path.join(b.state_dir, "default_on-c", "main.log")
        pid = int(wait_for(lambda: os.path.exists(log) and open(log).read().split()[1:2], 10, "the pid")[0])
        assert any(n.startswith(bridge + "-") for n in os.listdir("/run/netns"))
    finally:
        rc = b.stop()
        try:
            api.delete("/api/v1/namespaces/default/pods/on-c", {"gracePeriodSeconds": 0})
        except ApiError:
            pass
    assert rc == 0
    assert pid_dead(pid)
    assert not [n for n in os.listdir("/run/netns") if n.startswith(bridge + "-")]
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    for n in nodes:
        try:
            api.get(f"/api/v1/nodes/{n}")
            raise AssertionError(f"node {n} still registered")
        except ApiError as e:
            assert e.status == 404


def test_startup_probe_gates_started_and_ready(api, agent, ns):
    create_pod(api, ns, "slow", {
        "terminationGracePeriodSeconds": 1,
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [{"name": "main", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        "command": ["sh", "-c", "while [ ! -f /data/go ]; do sleep 0.1; done; touch /data/started; exec sleep 300"],
                        "startupProbe": {"exec": {"command": ["test", "-f", "/data/started"]}, "periodSeconds": 1, "failureThreshold": 30}}],
    })
    pod = wait_phase(api, ns, "slow", "Running")
    cs = wait_for(lambda: (c := get_pod(api, ns, "slow")["status"]["containerStatuses"][0]).get("state", {}).get("running") and c,
                  15, "the container to run")
    assert cs["started"] is False and cs["ready"] is False
    volume = os.path.join(agent.state_dir, "pods", pod["metadata"]["uid"], "volumes", "data")
    open(os.path.join(volume, "go"), "w").close()
    pod = wait_ready(api, ns, "slow", 15)
    assert pod["status"]["containerStatuses"][0]["started"] is True


def test_secret_downward_and_pvc_volumes(api, agent, ns):
    api.post(f"/api/v1/namespaces/{ns}/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
             "data": {"user": base64.b64encode(b"admin").decode()}})
    create_pod(api, ns, "vols", {
        "restartPolicy": "Never",
        "volumes": [
            {"name": "creds", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "nested/user.txt"}]}},
            {"name": "meta", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                                       {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "claim", "persistentVolumeClaim": {"claimName": "models"}},
        ],
        "containers": [{"name": "main", "image": "busybox",
                        "command": ["sh", "-c", "cat /creds/nested/user.txt; echo; cat /meta/labels; echo; cat /meta/name; echo; echo kept > /claim/out"],
                        "volumeMounts": [{"name": "creds", "mountPath": "/creds", "readOnly": True},
                                         {"name": "meta", "mountPath": "/meta"},
                                         {"name": "claim", "mountPath": "/claim"}]}],
    }, labels={"app": "vols"})
    wait_phase(api, ns, "vols", "Succeeded")
    assert log_of(agent, ns, "vols", "main").splitlines() == ["admin", 'app="vols"', "vols"]
    with open(os.path.join(agent.state_dir, "pvc", ns, "models", "out")) as f:
        assert f.read() == "kept\n"


def test_osprey_image_runs_the_built_server(api, agent, ns):
    """The image table maps ghcr.io/osprey/osprey to the built binary (OSPREY_BIN, else
    <repo>/target/debug/osprey, which scripts/test.sh builds first): the pod serves the identity
    model on its IP and the controller's probe shape (httpGet on a named port) makes it Ready."""
    from node_agent.images import ImageTable

    if ImageTable().program("osprey") is None:
        import pytest

        pytest.skip("no osprey binary (cargo build, or OSPREY_BIN)")
    models = os.path.join(os.path.dirname(os.path.dirname(agent_harness.K8S)), "models")
    create_pod(api, ns, "server", {
        "volumes": [{"name": "models", "hostPath": {"path": models}}],
        "containers": [{
            "name": "osprey", "image": "ghcr.io/osprey/osprey:latest",
            "args": ["serve", "--model-repository", "/mnt/models", "--model", "identity",
                     "--http-port", "8000", "--grpc-port", "8001", "--metrics-port", "8002"],
            "ports": [{"name": "http", "containerPort": 8000}],
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1},
            "volumeMounts": [{"name": "models", "mountPath": "/mnt/models", "readOnly": True}],
        }],
    })
    pod = wait_ready(api, ns, "server", 60)
    status, body = http_get(f"http://{pod['status']['podIP']}:8000/v2/models/identity")
    assert status == 200 and '"name":"identity"' in body.replace(" ", "")


def test_agent_restarted_after_sigkill_removes_leftovers(api, agent, tmp_path, cluster):
    """An agent killed with SIGKILL leaves its pods' processes and namespaces; the next agent on
    the same bridge kills and removes them, then runs the node's pods again."""
    node, bridge, cidr = "osprey-test-node-d", "ospt-br2", "10.248.0.0/16"
    env = os.path.join(cluster, "env")
    first = AgentProcess(env, str(tmp_path / "state1"), bridge, cidr, node)
    second = None
    try:
        api.post("/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-d"}, "spec": {
            "nodeName": node, "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo pid $$$$; exec sleep 300"]}]}})
        wait_phase(api, "default", "on-d", "Running")
        log1 = os.path.join(first.state_dir, "default_on-d", "main.log")
        pid = int(wait_for(lambda: os.path.exists(log1) and open(log1).read().split()[1:2], 10, "the pid")[0])
        old_ns = [n for n in os.listdir("/run/netns") if n.startswith(bridge + "-")]
        assert len(old_ns) == 1
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
        assert not pid_dead(pid), "the container outlives a SIGKILLed agent (own session)"
        second = AgentProcess(env, str(tmp_path / "state2"), bridge, cidr, node, clean_first=False)
        wait_for(lambda: pid_dead(pid), 10, "the leftover container process to be killed")
        log2 = os.path.join(second.state_dir, "default_on-d", "main.log")
        pid2 = int(wait_for(lambda: os.path.exists(log2) and open(log2).read().split()[1:2], 20, "the pod to run again")[0])
        assert pid2 != pid and not pid_dead(pid2)
        # The namespace name derives from the pod UID: the same name, recreated, holding only the new process.
        pids = subprocess.run(["ip", "netns", "pids", old_ns[0]], capture_output=True, text=True, timeout=10).stdout.split()
        assert pids == [str(pid2)]
    finally:
        try:
            api.delete("/api/v1/namespaces/default/pods/on-d", {"gracePeriodSeconds": 0})
        except ApiError:
            pass
        if second is not None:
            second.stop()
        first.stop()



def test_unknown_names_fail_fast(api, agent, ns):
    """No DNS server: a name missing from /etc/hosts fails at once, and nothing leaves the pod."""
    script = """
import socket, time
t = time.monotonic()
try:
    socket.gethostbyname("no-such-service-osprey")
    print("resolved")
except OSError as e:
    print("failed", round(time.monotonic() - t, 1))
print(open("/etc/resolv.conf").read().split("nameserver ")[1].split()[0])
"""
    create_pod(api, ns, "dns", {"restartPolicy": "Never", "containers": [{"name": "main", "image": "python:3.11", "command": ["python", "-c", script]}]})
    wait_phase(api, ns, "dns", "Succeeded")
    first, server = log_of(agent, ns, "dns", "main").splitlines()
    assert first.startswith("failed") and float(first.split()[1]) < 3
    assert server == "127.0.0.1"


def test_missing_configmap_waits_then_runs(api, agent, ns):
    """A missing ConfigMap keeps the pod ContainerCreating with the reason; once it exists the
    pod starts (the agent retries)."""
    create_pod(api, ns, "later", {"restartPolicy": "Never", "volumes": [{"name": "cfg", "configMap": {"name": "late"}}],
                                  "containers": [{"name": "main", "image": "busybox", "command": ["cat", "/cfg/k"],
                                                  "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}]})

    def waiting():
        st = get_pod(api, ns, "later")["status"].get("containerStatuses", [{}])[0].get("state", {}).get("waiting", {})
        return st.get("reason") == "ContainerCreating" and 'configmap "late" not found' in st.get("message", "") and st

    wait_for(waiting, 15, "ContainerCreating with the missing ConfigMap's name")
    assert get_pod(api, ns, "later")["status"]["phase"] == "Pending"
    api.post(f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}, "data": {"k": "v"}})
    wait_phase(api, ns, "later", "Succeeded", 20)
    assert log_of(agent, ns, "later", "main") == "v"


def test_pod_bound_later_like_a_scheduler_does(api, agent, ns):
    """An unscheduled pod is left alone; a Binding (what kube-scheduler posts) brings it into the
    node's watch and it runs."""
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unbound"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["echo", "bound"]}]}}
    api.post(f"/api/v1/namespaces/{ns}/pods", body)
    # Another pod on the same node acts as a barrier: once it has run, the agent has seen both.
    create_pod(api, ns, "barrier", {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]})
    wait_phase(api, ns, "barrier", "Succeeded")
    assert "podIP" not in get_pod(api, ns, "unbound")["status"]
    assert log_of(agent, ns, "unbound", "main") == ""
    api.post(f"/api/v1/namespaces/{ns}/pods/unbound/binding",
             {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "unbound"}, "target": {"apiVersion": "v1", "kind": "Node", "name": NODE}})
    wait_phase(api, ns, "unbound", "Succeeded")
    assert log_of(agent, ns, "unbound", "main") == "bound\n"


def test_image_files_are_mounted_read_only(api, agent, ns):
    """kubeflowkatib/pytorch-mnist's table rule mounts examples/training at /opt/pytorch-mnist and
    runs its mnist.py (the image's ENTRYPOINT) with the pod's args."""
    image = "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727"
    check = "head -1 /opt/pytorch-mnist/mnist.py; touch /opt/pytorch-mnist/w 2>/dev/null && echo writable || echo read-only"
    create_pod(api, ns, "mnist", {"restartPolicy": "Never", "containers": [
        {"name": "train", "image": image, "args": ["--epochs=1", "--steps=50", "--backend=gloo"]},
        {"name": "check", "image": image, "command": ["sh", "-c", check]},
    ]})
    wait_phase(api, ns, "mnist", "Succeeded", timeout=60)
    train = log_of(agent, ns, "mnist", "train")
    assert "rank=0 world=1 coordinator=127.0.0.1:23456 source=pytorch" in train and "final rank=0 world=1" in train, train
    assert "ignoring unknown arguments: --backend=gloo" in train
    assert log_of(agent, ns, "mnist", "check") == '"""Stand-in for /opt/pytorch-mnist/mnist.py of the kubeflowkatib/pytorch-mnist image.\nread-only\n'


def test_ddp_training_across_pods(api, agent, ns):
    """Two pods of the mnist stand-in train together as a PyTorchJob's master and worker do:
    MASTER_ADDR names the master's headless Service, which the worker resolves through
    /etc/hosts once the master pod is Ready (it retries until then)."""
    image = "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727"
    api.post(f"/api/v1/namespaces/{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ddp-master-0"},
             "spec": {"clusterIP": "None", "selector": {"role": "master"}, "ports": [{"port": 23456}]}})
    for rank, name, role in ((1, "ddp-worker-0", "worker"), (0, "ddp-master-0", "master")):
        env = [{"name": "RANK", "value": str(rank)}, {"name": "WORLD_SIZE", "value": "2"},
               {"name": "MASTER_ADDR", "value": "ddp-master-0"}, {"name": "MASTER_PORT", "value": "23456"}]
        create_pod(api, ns, name, {"restartPolicy": "Never", "containers": [
            {"name": "pytorch", "image": image, "args": ["--epochs=1", "--rendezvous-timeout=40"], "env": env}]}, labels={"role": role})
    digests = set()
    for rank, name in ((0, "ddp-master-0"), (1, "ddp-worker-0")):
        wait_phase(api, ns, name, "Succeeded", timeout=60)
        text = log_of(agent, ns, name, "pytorch")
        line = [x for x in text.splitlines() if x.startswith(f"final rank={rank} world=2 ")]
        assert line, text
        digests.add(line[0].rsplit("=", 1)[1])
    assert len(digests) == 1
