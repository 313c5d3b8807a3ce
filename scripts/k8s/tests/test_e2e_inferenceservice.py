"""End to end on a real control plane: the example InferenceService from deploy/ becomes pods
that actually run. kube-apiserver, kube-controller-manager and kube-scheduler (start-cluster.sh),
the test node agent, and `osprey controller` as a process: the Deployment it creates becomes a
ReplicaSet and a Pod (controller-manager), the Pod lands on the node (scheduler), the agent runs
`osprey pull` as the init container and `osprey serve` behind the real readiness probe, and an
inference request to the pod, and through the Service name from a client pod, gets the bundled
iris model's reference answer. Needs root, iproute2 and the built target/debug/osprey
(scripts/test.sh builds it first); skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

from agent_harness import K8S, full_cluster, wait_for

from node_agent.api import Api, ApiConfig, ApiError

REPO = os.path.dirname(os.path.dirname(K8S))
OSPREY = os.environ.get("OSPREY_BIN", os.path.join(REPO, "target", "debug", "osprey"))
BRIDGE, CIDR, NODE = "ospe-br0", "10.246.0.0/16", "osprey-e2e-node"
IMAGE = "ghcr.io/osprey/osprey:latest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubectl_path() -> str:
    out = subprocess.run([os.path.join(K8S, "build-apiserver.sh")], capture_output=True, text=True,
                         timeout=1800, check=True).stdout
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("KUBECTL="))


def kubectl(cluster: str, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": os.path.join(cluster, "kubeconfig")}
    res = subprocess.run([kubectl_path(), *args], input=stdin, env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    # Room for a canary's five pods, each requesting a CPU and 1 GiB (the example's requests).
    yield from full_cluster(tmp_path_factory.mktemp("k8s-e2e"), BRIDGE, CIDR, NODE, OSPREY, ["--cpu", "16", "--memory", "32Gi"])


@pytest.fixture(scope="module")
def api(control_plane) -> Api:
    return Api(ApiConfig.from_env_file(os.path.join(control_plane[0], "env")))


@pytest.fixture(scope="module")
def controller(control_plane, api):
    """CRDs and RBAC from deploy/, then `osprey controller` as a process on the admin kubeconfig."""
    cluster, _ = control_plane
    kubectl(cluster, "apply", "-f", os.path.join(REPO, "deploy", "crds"))
    wait_for(lambda: _established(api), 30, "the InferenceService CRD to be Established")
    log_path = os.path.join(cluster, "controller.log")
    log = open(log_path, "wb")
    env = {**os.environ, "KUBECONFIG": os.path.join(cluster, "kubeconfig"), "RUST_LOG": "info"}
    proc = subprocess.Popen([OSPREY, "controller", "--image", IMAGE, "--leader-election", "false",
                             "--health-port", str(free_port())], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        with open(log_path, errors="replace") as f:
            print("controller log tail:\n" + "".join(f.readlines()[-20:]))


def _established(api: Api) -> bool:
    crd = api.get_or_none("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferenceservices.serving.osprey.dev")
    conditions = ((crd or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


@pytest.fixture
def ns(api, controller):
    name = "e2e-" + uuid.uuid4().hex[:6]
    api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    try:
        api.delete(f"/api/v1/namespaces/{name}")
    except ApiError:
        pass


def example_isvc(storage_uri: str, ns: str) -> str:
    """deploy/example-inferenceservice.yaml with its storageUri pointed at the node's copy of the
    model, in the test's namespace."""
    text = open(os.path.join(REPO, "deploy", "example-inferenceservice.yaml")).read()
    for field in ("storageUri: s3://models/iris", "namespace: default"):
        assert field in text, field
    return text.replace("storageUri: s3://models/iris", f"storageUri: {storage_uri}").replace(
        "namespace: default", f"namespace: {ns}")


def isvc_ready(api: Api, ns: str, name: str):
    isvc = api.get_or_none(f"/apis/serving.osprey.dev/v1beta1/namespaces/{ns}/inferenceservices/{name}")
    conds = (isvc or {}).get("status", {}).get("conditions", [])
    return isvc if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None


def pods_of(api: Api, ns: str, selector: str) -> list[dict]:
    return api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector).get("items", [])


def infer(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def reference() -> tuple[dict, list]:
    case = json.load(open(os.path.join(REPO, "models", "iris", "reference.json")))["cases"][0]
    return {"inputs": case["inputs"], "outputs": [{"name": "label", "parameters": {"binary_data": False}}]}, \
        next(o for o in case["outputs"] if o["name"] == "label")["data"]


def test_example_inferenceservice_serves_through_kubernetes(control_plane, api, ns, tmp_path):
    cluster, agent = control_plane
    # The model served on the node by a pod (an http:// storageUri), fetched by `osprey pull` in
    # the init container.
    store = tmp_path / "store"
    shutil.copytree(os.path.join(REPO, "models", "iris", "1"), store / "iris")
    uri = f"http://{model_store(api, ns, str(store))}:8080/iris/model.onnx"
    t0 = time.monotonic()
    kubectl(cluster, "apply", "-n", ns, "-f", "-", stdin=example_isvc(uri, ns))
    wait_for(lambda: isvc_ready(api, ns, "iris"), 180, "InferenceService iris to be Ready")
    ready_after = time.monotonic() - t0
    pods = pods_of(api, ns, "serving.osprey.dev/inferenceservice=iris")
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod = pods[0]
    assert pod["spec"]["nodeName"] == NODE, "the scheduler bound it to the agent's node"
    owners = pod["metadata"].get("ownerReferences", [])
    assert owners and owners[0]["kind"] == "ReplicaSet", "the controller-manager made it"
    init = pod["status"]["initContainerStatuses"][0]
    assert init["name"] == "storage-initializer"
    assert init["state"]["terminated"]["exitCode"] == 0, init
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])

    body, labels = reference()
    ip = pod["status"]["podIP"]
    answer = infer(f"http://{ip}:8000/v2/models/iris/infer", body)
    assert answer["outputs"][0]["data"] == labels, answer
    first_inference = time.monotonic() - t0
    print(f"kubectl apply -> Ready {ready_after:.1f}s, -> first inference {first_inference:.1f}s")

    # Through the Service name, from a client pod whose /etc/hosts the agent writes.
    svc = api.get(f"/api/v1/namespaces/{ns}/services/iris-predictor")
    port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    script = ("import os, urllib.request; "
              "req = urllib.request.Request(os.environ['URL'], data=os.environ['BODY'].encode(), "
              "headers={'Content-Type': 'application/json'}); "
              "print(urllib.request.urlopen(req, timeout=10).read().decode())")
    api.post(f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "client", "image": "python:3.11", "command": ["python", "-c", script],
            "env": [{"name": "URL", "value": f"http://iris-predictor:{port}/v2/models/iris/infer"},
                    {"name": "BODY", "value": json.dumps(body)}]}]}})
    done = wait_for(lambda: _finished(api, ns, "client"), 60, "the client pod to finish")
    log = os.path.join(agent.state_dir, f"{ns}_client", "client.log")
    text = open(log).read()
    assert done == "Succeeded", text
    assert json.loads(text.strip().splitlines()[-1])["outputs"][0]["data"] == labels, text


def model_store(api: Api, ns: str, directory: str) -> str:
    """A pod serving `directory` over HTTP on port 8080; returns its IP once it answers."""
    api.post(f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "model-store"},
        "spec": {"containers": [{
            "name": "http", "image": "python:3.11",
            "command": ["python", "-m", "http.server", "8080", "--directory", directory],
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}})

    def ready_ip():
        pod = api.get_or_none(f"/api/v1/namespaces/{ns}/pods/model-store")
        status = (pod or {}).get("status", {})
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", []))
        return status.get("podIP") if ready else None

    return wait_for(ready_ip, 60, "the model store pod to be Ready")


def _finished(api: Api, ns: str, name: str):
    pod = api.get_or_none(f"/api/v1/namespaces/{ns}/pods/{name}")
    phase = (pod or {}).get("status", {}).get("phase")
    return phase if phase in ("Succeeded", "Failed") else None


def serve_iris(cluster: str, api: Api, ns: str, tmp_path, extra: str = "") -> None:
    """The example InferenceService on a model served by a pod, Ready."""
    store = tmp_path / "store"
    shutil.copytree(os.path.join(REPO, "models", "iris", "1"), store / "iris")
    uri = f"http://{model_store(api, ns, str(store))}:8080/iris/model.onnx"
    kubectl(cluster, "apply", "-n", ns, "-f", "-", stdin=example_isvc(uri, ns) + extra)
    wait_for(lambda: isvc_ready(api, ns, "iris"), 180, "InferenceService iris to be Ready")


def ready_pods(api: Api, ns: str, selector: str) -> list[dict]:
    return [p for p in pods_of(api, ns, selector)
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


def answers(pod: dict) -> list:
    body, _ = reference()
    return infer(f"http://{pod['status']['podIP']}:8000/v2/models/iris/infer", body)["outputs"][0]["data"]


PREDICTOR = "serving.osprey.dev/inferenceservice=iris,serving.osprey.dev/component=predictor"


def test_scale_replace_and_delete(control_plane, api, ns, tmp_path):
    """minReplicas 1 -> 2 gives two serving pods; killing a serving pod's server makes Kubernetes
    restart it and the InferenceService returns to Ready; deleting the InferenceService removes
    every pod through the cluster's garbage collection."""
    cluster, agent = control_plane
    serve_iris(cluster, api, ns, tmp_path)
    _, labels = reference()
    kubectl(cluster, "patch", "-n", ns, "inferenceservice", "iris", "--type", "merge",
            "-p", json.dumps({"spec": {"predictor": {"minReplicas": 2}}}))
    pods = wait_for(lambda: (lambda ps: ps if len(ps) == 2 else None)(ready_pods(api, ns, PREDICTOR)), 120,
                    "two ready predictor pods")
    wait_for(lambda: isvc_ready(api, ns, "iris"), 60, "Ready with two replicas")
    for p in pods:
        assert answers(p) == labels, p["metadata"]["name"]

    # Kill the server of one pod: every process in its network namespace.
    victim = pods[0]
    netns = agent.bridge + "-" + victim["metadata"]["uid"].replace("-", "")[:12]
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=10).stdout.split()
    assert pids, f"no processes in {netns}"
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)

    def restarted():
        pod = api.get_or_none(f"/api/v1/namespaces/{ns}/pods/{victim['metadata']['name']}")
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
        return pod if any(c["name"] == "osprey" and c["restartCount"] >= 1 and c["ready"] for c in statuses) else None

    pod = wait_for(restarted, 120, "the killed server to be restarted and ready again")
    assert answers(pod) == labels
    wait_for(lambda: isvc_ready(api, ns, "iris"), 60, "Ready again after the restart")

    kubectl(cluster, "delete", "-n", ns, "inferenceservice", "iris", "--wait=false")
    wait_for(lambda: not pods_of(api, ns, PREDICTOR), 120, "every predictor pod to be gone")
    assert not api.get(f"/apis/apps/v1/namespaces/{ns}/replicasets").get("items"), "ReplicaSets collected"


def test_canary_split_and_promotion(control_plane, api, ns, tmp_path):
    """A changed spec with canaryTrafficPercent 25 over minReplicas 4: the old revision keeps 3
    serving pods and the new one gets 1, all answering; promotion (100) leaves only the new
    revision running."""
    cluster, _ = control_plane
    serve_iris(cluster, api, ns, tmp_path)
    _, labels = reference()
    kubectl(cluster, "patch", "-n", ns, "inferenceservice", "iris", "--type", "merge",
            "-p", json.dumps({"spec": {"predictor": {"minReplicas": 4}}}))
    wait_for(lambda: len(ready_pods(api, ns, PREDICTOR)) == 4 and isvc_ready(api, ns, "iris"), 180,
             "four ready pods of the first revision")
    old = {p["metadata"]["labels"]["serving.osprey.dev/revision"] for p in ready_pods(api, ns, PREDICTOR)}
    assert len(old) == 1, old

    # A new revision (another memory limit) as a 25% canary.
    kubectl(cluster, "patch", "-n", ns, "inferenceservice", "iris", "--type", "merge", "-p", json.dumps(
        {"spec": {"predictor": {"canaryTrafficPercent": 25, "model": {"resources": {"limits": {"memory": "3Gi"}}}}}}))

    def split():
        ps = ready_pods(api, ns, PREDICTOR)
        tracks = sorted(p["metadata"]["labels"]["serving.osprey.dev/track"] for p in ps)
        return ps if tracks == ["canary", "stable", "stable", "stable"] and isvc_ready(api, ns, "iris") else None

    pods = wait_for(split, 180, "3 stable + 1 canary ready pods")
    revisions = {p["metadata"]["labels"]["serving.osprey.dev/track"]: p["metadata"]["labels"]["serving.osprey.dev/revision"]
                 for p in pods}
    assert revisions["stable"] in old and revisions["canary"] not in old, revisions
    for p in pods:
        assert answers(p) == labels, p["metadata"]["name"]

    # Promotion: only the new revision runs, on the stable Deployment; the canary goes.
    kubectl(cluster, "patch", "-n", ns, "inferenceservice", "iris", "--type", "merge",
            "-p", json.dumps({"spec": {"predictor": {"canaryTrafficPercent": 100}}}))

    def promoted():
        ps = pods_of(api, ns, PREDICTOR)
        revs = {p["metadata"]["labels"]["serving.osprey.dev/revision"] for p in ps}
        ready = ready_pods(api, ns, PREDICTOR)
        return revs == {revisions["canary"]} and len(ready) == 4 and isvc_ready(api, ns, "iris")

    wait_for(promoted, 240, "only the new revision, 4 ready pods")
    assert api.get_or_none(f"/apis/apps/v1/namespaces/{ns}/deployments/iris-predictor-canary") is None


def predictor_condition(api: Api, ns: str, name: str) -> dict | None:
    isvc = api.get_or_none(f"/apis/serving.osprey.dev/v1beta1/namespaces/{ns}/inferenceservices/{name}")
    conds = ((isvc or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conds if c["type"] == "PredictorReady"), None)


def test_a_broken_model_is_not_ready_with_the_pods_reason(control_plane, api, ns, controller, tmp_path):
    """A storageUri that answers 404: the init container fails, the InferenceService stays not
    Ready with the real pod's reason (the pull's own error), and the controller keeps running."""
    store = tmp_path / "empty"
    store.mkdir()
    uri = f"http://{model_store(api, ns, str(store))}:8080/nope/model.onnx"
    kubectl(control_plane[0], "apply", "-n", ns, "-f", "-", stdin=example_isvc(uri, ns))

    def reason():
        c = predictor_condition(api, ns, "iris")
        return c if c and c["status"] == "False" and "storage-initializer" in c.get("message", "") else None

    cond = wait_for(reason, 90, "PredictorReady to carry the failing init container's reason")
    assert "HTTP 404" in cond["message"], cond
    assert "0 of 1 replicas ready" in cond["message"], cond
    assert not isvc_ready(api, ns, "iris")
    assert controller.poll() is None, "the controller must not crash"
