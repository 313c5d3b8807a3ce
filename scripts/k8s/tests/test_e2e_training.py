"""End to end on a real control plane: PyTorchJobs and TFJobs (kubeflow.org/v1) run by
`osprey controller` as a process, their pods scheduled by kube-scheduler and run by the test node
agent (examples/training/ddp_logreg.py, numpy data-parallel training over TCP between the pods).
Covers the training operator docs' manifest unchanged, ExitCode restarts (recreated pods),
permanent failures, backoffLimit, activeDeadlineSeconds, suspend/resume, a TFJob's TF_CONFIG,
invalid specs, and the stock kubeflow-training SDK (TrainingClient). Needs root, iproute2 and
target/debug/osprey (or OSPREY_BIN); skipped otherwise."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import uuid
from dataclasses import dataclass

import pytest

from agent_harness import AgentProcess, K8S, full_cluster, wait_for
from node_agent.api import Api, ApiConfig, ApiError
from test_e2e_inferenceservice import OSPREY, REPO, free_port, kubectl

BRIDGE, CIDR, NODE = "ospk-br0", "10.250.0.0/16", "osprey-train-node"
GROUP = "/apis/kubeflow.org/v1"
PLURAL = {"PyTorchJob": "pytorchjobs", "TFJob": "tfjobs"}
DDP = os.path.join(REPO, "examples", "training", "ddp_logreg.py")
PYTHON_IMAGE = "docker.io/library/python:3.11"
VENV_BIN = os.path.join(REPO, ".venv", "bin")
# Short trainings keep the module quick; a rendezvous that cannot complete gives up soon.
FAST = ["--steps", "60", "--rendezvous-timeout", "30"]


@dataclass
class Cluster:
    dir: str
    agent: AgentProcess
    api: Api
    controller: subprocess.Popen
    controller_log: str


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    yield from full_cluster(tmp_path_factory.mktemp("k8s-train"), BRIDGE, CIDR, NODE, OSPREY,
                            ["--cpu", "32", "--memory", "64Gi"])


def _established(api: Api, name: str) -> bool:
    crd = api.get_or_none(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in ((crd or {}).get("status") or {}).get("conditions") or [])


def controller_on(control_plane, crds: tuple[str, ...], extra_args: tuple[str, ...] = ()):
    """Generator for a module fixture: the CRDs and RBAC from deploy/, then `osprey controller`
    as a process on the admin kubeconfig (as test_e2e_inferenceservice.py runs it), once `crds`
    are Established; yields the Cluster and stops the controller."""
    d, agent = control_plane
    api = Api(ApiConfig.from_env_file(os.path.join(d, "env")))
    kubectl(d, "apply", "-f", os.path.join(REPO, "deploy", "crds"))
    kubectl(d, "apply", "-f", os.path.join(REPO, "deploy", "rbac.yaml"))
    for crd in crds:
        wait_for(lambda: _established(api, crd), 30, f"the {crd} CRD to be Established")
    log_path = os.path.join(d, "controller.log")
    log = open(log_path, "wb")
    env = {**os.environ, "KUBECONFIG": os.path.join(d, "kubeconfig"), "RUST_LOG": "info"}
    proc = subprocess.Popen([OSPREY, "controller", "--leader-election", "false", "--health-port", str(free_port()),
                             *extra_args],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield Cluster(d, agent, api, proc, log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        print("controller log tail:\n" + tail(log_path, 30))


@pytest.fixture(scope="module")
def k(control_plane):
    yield from controller_on(control_plane, ("pytorchjobs.kubeflow.org", "tfjobs.kubeflow.org",
                                             "inferenceservices.serving.osprey.dev"))


def fresh_namespace(k: Cluster, prefix: str):
    """Generator for a test fixture: a new namespace `<prefix>-xxxxxx`, deleted afterwards."""
    name = f"{prefix}-" + uuid.uuid4().hex[:6]
    k.api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    try:
        k.api.delete(f"/api/v1/namespaces/{name}")
    except ApiError:
        pass


@pytest.fixture
def ns(k):
    yield from fresh_namespace(k, "tr")


# --- helpers ---

def tail(path: str, n: int = 40) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"({e})"


def job_path(ns: str, kind: str, name: str = "") -> str:
    return f"{GROUP}/namespaces/{ns}/{PLURAL[kind]}" + (f"/{name}" if name else "")


def get_job(k: Cluster, ns: str, kind: str, name: str) -> dict | None:
    return k.api.get_or_none(job_path(ns, kind, name))


def create_job(k: Cluster, ns: str, job: dict) -> None:
    k.api.post(job_path(ns, job["kind"]), job)


def condition(job: dict | None, type_: str) -> dict | None:
    return next((c for c in ((job or {}).get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def is_true(job: dict | None, type_: str) -> bool:
    c = condition(job, type_)
    return bool(c and c["status"] == "True")


def pods(k: Cluster, ns: str, job_name: str) -> list[dict]:
    return k.api.get(f"/api/v1/namespaces/{ns}/pods",
                     labelSelector=f"training.kubeflow.org/job-name={job_name}").get("items", [])


def pod_log(k: Cluster, ns: str, pod: str, container: str) -> str:
    path = os.path.join(k.agent.state_dir, f"{ns}_{pod}", f"{container}.log")
    with open(path, errors="replace") as f:
        return f.read()


def digest(log: str) -> tuple[int, int, str]:
    """(rank, world, weights_sha256) from ddp_logreg.py's final line."""
    line = next(l for l in reversed(log.splitlines()) if l.startswith("final rank="))
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    return int(fields["rank"]), int(fields["world"]), fields["weights_sha256"]


def without_managed_fields(text: str) -> str:
    """kubectl 1.20 has no --show-managed-fields=false: drops the metadata.managedFields block."""
    lines, skipping = [], False
    for line in text.splitlines():
        if line == "  managedFields:":
            skipping = True
            continue
        if skipping and (line.startswith("   ") or line.startswith("  - ")):
            continue
        skipping = False
        lines.append(line)
    return "\n".join(lines)


def diagnose(k: Cluster, ns: str, kind: str | None, name: str | None) -> str:
    """The job's YAML, its pods, events, pod logs and the controller's log tail."""
    out = []

    def run(*args):
        try:
            out.append(f"$ kubectl {' '.join(args)}\n" + kubectl(k.dir, *args))
        except AssertionError as e:
            out.append(str(e))

    if kind and name:
        run("get", "-n", ns, kind.lower(), name, "-o", "yaml")
        out[-1] = without_managed_fields(out[-1])
    run("get", "-n", ns, "pods", "-o", "wide", "--show-labels")
    run("get", "-n", ns, "events", "--sort-by=.lastTimestamp")
    for log in sorted(glob.glob(os.path.join(k.agent.state_dir, f"{ns}_*", "*.log*"))):
        out.append(f"--- {os.path.relpath(log, k.agent.state_dir)}\n{tail(log, 15)}")
    out.append(f"--- controller log (alive: {k.controller.poll() is None})\n{tail(k.controller_log, 25)}")
    return "\n".join(out)


def wait(k: Cluster, ns: str, fn, timeout: float, what: str, kind: str | None = None, name: str | None = None):
    """wait_for with the cluster's state in the failure message."""
    try:
        return wait_for(fn, timeout, what, interval=0.2)
    except AssertionError as e:
        raise AssertionError(f"{e}\n\n{diagnose(k, ns, kind, name)}") from None


def wait_finished(k: Cluster, ns: str, kind: str, name: str, timeout: float = 60) -> dict:
    """Waits for Succeeded or Failed and returns the job."""
    def done():
        job = get_job(k, ns, kind, name)
        return job if is_true(job, "Succeeded") or is_true(job, "Failed") else None
    return wait(k, ns, done, timeout, f"{kind} {ns}/{name} to finish", kind, name)


def expect(k: Cluster, ns: str, job: dict, cond: str, reason: str | None = None) -> dict:
    """Asserts the finished job's condition (and reason), with diagnostics otherwise."""
    kind, name = job["kind"], job["metadata"]["name"]
    c = condition(job, cond)
    if not (c and c["status"] == "True" and (reason is None or c.get("reason") == reason)):
        raise AssertionError(f"expected {kind} {name} {cond}={reason}, got {condition(job, 'Succeeded')} / "
                             f"{condition(job, 'Failed')}\n\n{diagnose(k, ns, kind, name)}")
    return c


def container(name: str, args: list[str], mounts: list[dict] | None = None, **extra) -> dict:
    c = {"name": name, "image": PYTHON_IMAGE, "command": ["python3", DDP], "args": args, **extra}
    if mounts:
        c["volumeMounts"] = mounts
    return c


def replica(count: int, policy: str, c: dict, volumes: list[dict] | None = None) -> dict:
    spec = {"containers": [c]}
    if volumes:
        spec["volumes"] = volumes
    return {"replicas": count, "restartPolicy": policy, "template": {"spec": spec}}


def pytorchjob(name: str, workers: int = 1, policy: str = "ExitCode", args: list[str] = (),
               run_policy: dict | None = None, master: dict | None = None, worker: dict | None = None) -> dict:
    spec = {"pytorchReplicaSpecs": {
        "Master": master or replica(1, policy, container("pytorch", FAST + list(args))),
        "Worker": worker or replica(workers, policy, container("pytorch", FAST + list(args))),
    }}
    if run_policy:
        spec["runPolicy"] = run_policy
    return {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"name": name}, "spec": spec}


# --- tests ---

def test_docs_manifest_unchanged_succeeds(k):
    """examples/training/pytorch-simple.yaml (the operator docs' example, namespace kubeflow) as is."""
    ns, name = "kubeflow", "pytorch-simple"
    if k.api.get_or_none(f"/api/v1/namespaces/{ns}") is None:
        k.api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        kubectl(k.dir, "apply", "-f", os.path.join(REPO, "examples", "training", "pytorch-simple.yaml"))
        job = wait_finished(k, ns, "PyTorchJob", name)
        expect(k, ns, job, "Succeeded", "PyTorchJobSucceeded")
        assert job["status"].get("startTime") and job["status"].get("completionTime"), job["status"]
        assert job["status"]["replicaStatuses"]["Master"]["succeeded"] == 1, job["status"]

        def both_done():
            ps = pods(k, ns, name)
            return ps if len(ps) == 2 and all(p["status"].get("phase") == "Succeeded" for p in ps) else None
        ps = {p["metadata"]["name"]: p for p in wait(k, ns, both_done, 30, "both pods to succeed", "PyTorchJob", name)}
        assert set(ps) == {f"{name}-master-0", f"{name}-worker-0"}
        for pname, role in ((f"{name}-master-0", "master"), (f"{name}-worker-0", "worker")):
            labels = ps[pname]["metadata"]["labels"]
            assert labels["training.kubeflow.org/job-name"] == name, labels
            assert labels["training.kubeflow.org/replica-type"] == role, labels
            assert labels["training.kubeflow.org/replica-index"] == "0", labels
            assert labels["training.kubeflow.org/operator-name"] == "pytorchjob-controller", labels
            assert labels.get("training.kubeflow.org/job-role") == ("master" if role == "master" else None), labels
            assert ps[pname]["spec"]["nodeName"] == NODE
            owner = ps[pname]["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["name"], owner.get("controller")) == ("PyTorchJob", name, True), owner
            svc = k.api.get(f"/api/v1/namespaces/{ns}/services/{pname}")
            assert svc["spec"]["clusterIP"] == "None", svc["spec"]
            assert svc["spec"]["selector"]["training.kubeflow.org/replica-type"] == role, svc["spec"]
        logs = {p: pod_log(k, ns, p, "pytorch") for p in ps}
        results = sorted(digest(text) for text in logs.values())
        assert [(r, w) for r, w, _ in results] == [(0, 2), (1, 2)], logs
        assert results[0][2] == results[1][2], logs
    finally:
        k.api.delete(f"/api/v1/namespaces/{ns}")


def test_exit_code_137_recreates_the_pod_and_the_job_succeeds(k, ns, tmp_path):
    """Worker 1 (rank 2) exits 137 once (the marker on a hostPath outlives its pod): the
    controller deletes and recreates that pod, the three ranks then train together."""
    marker_dir = tmp_path / "marker"
    marker_dir.mkdir()
    crash = ["--crash-exit", "137", "--crash-rank", "2", "--crash-marker", "/marker/crashed"]
    worker = replica(2, "ExitCode", container("pytorch", FAST + crash, [{"name": "marker", "mountPath": "/marker"}]),
                     [{"name": "marker", "hostPath": {"path": str(marker_dir), "type": "Directory"}}])
    create_job(k, ns, pytorchjob("crash-once", worker=worker, run_policy={"backoffLimit": 3}))
    job = wait_finished(k, ns, "PyTorchJob", "crash-once", 90)
    expect(k, ns, job, "Succeeded", "PyTorchJobSucceeded")
    assert (marker_dir / "crashed").exists()
    restarting = condition(job, "Restarting")
    assert restarting is not None and restarting["status"] == "False", job["status"]["conditions"]
    assert "Worker 1 (exit code 137)" in restarting["message"], restarting
    ps = {p["metadata"]["name"]: p for p in pods(k, ns, "crash-once")}
    recreated = ps["crash-once-worker-1"]
    assert recreated["metadata"].get("annotations", {}).get("training.osprey.dev/recreations") == "1", recreated["metadata"]
    for other in ("crash-once-master-0", "crash-once-worker-0"):
        assert "training.osprey.dev/recreations" not in (ps[other]["metadata"].get("annotations") or {}), other
    results = sorted(digest(pod_log(k, ns, p, "pytorch")) for p in ps)
    assert [(r, w) for r, w, _ in results] == [(0, 3), (1, 3), (2, 3)], results
    assert len({d for _, _, d in results}) == 1, results
    events = k.api.get(f"/api/v1/namespaces/{ns}/events").get("items", [])
    assert any(e.get("reason") == "PyTorchJobRestarting" for e in events), [e.get("reason") for e in events]


def test_on_failure_restarts_in_place(k, ns, tmp_path):
    """OnFailure: the kubelet (the node agent) restarts the crashed container in its pod; the
    job succeeds and the pod is the same one, restarted once."""
    marker_dir = tmp_path / "marker"
    marker_dir.mkdir()
    crash = ["--crash-exit", "1", "--crash-rank", "1", "--crash-marker", "/marker/crashed"]
    worker = replica(1, "OnFailure", container("pytorch", FAST + crash, [{"name": "marker", "mountPath": "/marker"}]),
                     [{"name": "marker", "hostPath": {"path": str(marker_dir), "type": "Directory"}}])
    create_job(k, ns, pytorchjob("in-place", policy="OnFailure", worker=worker))
    job = wait_finished(k, ns, "PyTorchJob", "in-place", 60)
    expect(k, ns, job, "Succeeded", "PyTorchJobSucceeded")
    w = k.api.get(f"/api/v1/namespaces/{ns}/pods/in-place-worker-0")
    assert w["spec"]["restartPolicy"] == "OnFailure", w["spec"]
    assert w["status"]["containerStatuses"][0]["restartCount"] == 1, w["status"]
    assert "training.osprey.dev/recreations" not in (w["metadata"].get("annotations") or {}), w["metadata"]
    results = sorted(digest(pod_log(k, ns, p, "pytorch")) for p in ("in-place-master-0", "in-place-worker-0"))
    assert results[0][2] == results[1][2] and [r for r, _, _ in results] == [0, 1], results


def test_clean_pod_policy_all_and_ttl(k, ns):
    """cleanPodPolicy All removes the pods and Services once the job has finished;
    ttlSecondsAfterFinished then removes the job."""
    create_job(k, ns, pytorchjob("ttl", workers=1, run_policy={"cleanPodPolicy": "All", "ttlSecondsAfterFinished": 3}))
    job = wait_finished(k, ns, "PyTorchJob", "ttl")
    expect(k, ns, job, "Succeeded", "PyTorchJobSucceeded")
    wait(k, ns, lambda: not pods(k, ns, "ttl") and not k.api.get(
        f"/api/v1/namespaces/{ns}/services", labelSelector="training.kubeflow.org/job-name=ttl")["items"],
         30, "cleanPodPolicy All to delete the pods and Services", "PyTorchJob", "ttl")
    wait(k, ns, lambda: get_job(k, ns, "PyTorchJob", "ttl") is None, 30, "the TTL to delete the job", "PyTorchJob", "ttl")


def test_exit_code_1_fails_the_job(k, ns):
    """Under ExitCode, 1-127 is permanent: the job fails naming the replica."""
    create_job(k, ns, pytorchjob("exit-one", workers=1, args=["--crash-exit", "1", "--crash-rank", "1"]))
    job = wait_finished(k, ns, "PyTorchJob", "exit-one")
    c = expect(k, ns, job, "Failed", "PyTorchJobFailed")
    assert "Worker replica 0 exited with code 1" in c["message"], c
    assert job["status"].get("completionTime"), job["status"]
    assert job["status"]["replicaStatuses"]["Worker"]["failed"] == 1, job["status"]
    assert condition(job, "Restarting") is None, job["status"]["conditions"]


def test_backoff_limit_exceeded(k, ns):
    """A worker that always exits 137, backoffLimit 1: recreated once, then the job fails."""
    create_job(k, ns, pytorchjob("backoff", workers=1, args=["--crash-exit", "137", "--crash-rank", "1"],
                                 run_policy={"backoffLimit": 1}))
    job = wait_finished(k, ns, "PyTorchJob", "backoff")
    c = expect(k, ns, job, "Failed", "BackoffLimitExceeded")
    assert "backoffLimit 1" in c["message"], c
    assert condition(job, "Restarting") is not None, job["status"]["conditions"]
    # Failed by the limit: the master, still waiting for its peer, is stopped.
    wait(k, ns, lambda: all(p["status"].get("phase") in ("Succeeded", "Failed") or p["metadata"].get("deletionTimestamp")
                            for p in pods(k, ns, "backoff")) or None,
         30, "no active pods after BackoffLimitExceeded", "PyTorchJob", "backoff")
    worker = k.api.get_or_none(f"/api/v1/namespaces/{ns}/pods/backoff-worker-0")
    if worker is not None:
        assert worker["metadata"].get("annotations", {}).get("training.osprey.dev/recreations") == "1", worker["metadata"]


def test_active_deadline_exceeded(k, ns):
    """activeDeadlineSeconds 2 with replicas sleeping 60 s: DeadlineExceeded, pods stopped."""
    create_job(k, ns, pytorchjob("deadline", workers=1, args=["--sleep", "60"],
                                 run_policy={"activeDeadlineSeconds": 2}))
    wait(k, ns, lambda: any(p["status"].get("phase") == "Running" for p in pods(k, ns, "deadline")), 30,
         "a running pod", "PyTorchJob", "deadline")
    job = wait_finished(k, ns, "PyTorchJob", "deadline", 30)
    c = expect(k, ns, job, "Failed", "DeadlineExceeded")
    assert "deadline (2 s)" in c["message"], c
    wait(k, ns, lambda: not pods(k, ns, "deadline"), 30, "the pods to be deleted (stopped)", "PyTorchJob", "deadline")


def test_suspend_and_resume(k, ns):
    create_job(k, ns, pytorchjob("suspended", workers=1, run_policy={"suspend": True}))
    job = wait(k, ns, lambda: (lambda j: j if is_true(j, "Suspended") else None)(get_job(k, ns, "PyTorchJob", "suspended")),
               30, "Suspended=True", "PyTorchJob", "suspended")
    assert not pods(k, ns, "suspended"), "a suspended job has no pods"
    assert not is_true(job, "Running") and not job["status"].get("startTime"), job["status"]
    kubectl(k.dir, "patch", "-n", ns, "pytorchjob", "suspended", "--type", "merge",
            "-p", json.dumps({"spec": {"runPolicy": {"suspend": False}}}))
    wait(k, ns, lambda: len(pods(k, ns, "suspended")) == 2, 30, "pods created after resuming", "PyTorchJob", "suspended")
    job = wait_finished(k, ns, "PyTorchJob", "suspended")
    expect(k, ns, job, "Succeeded", "PyTorchJobSucceeded")
    s = condition(job, "Suspended")
    assert s["status"] == "False" and s["reason"] == "PyTorchJobResumed", s


def test_tfjob_succeeds_with_tf_config(k, ns):
    """tfjob.yaml's shape: a Chief and two Workers that find each other through TF_CONFIG."""
    def rep(count):
        return replica(count, "OnFailure", container("tensorflow", FAST))
    job = {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "metadata": {"name": "logreg-tf"},
           "spec": {"runPolicy": {"cleanPodPolicy": "Running"},
                    "tfReplicaSpecs": {"Chief": rep(1), "Worker": rep(2)}}}
    create_job(k, ns, job)
    job = wait_finished(k, ns, "TFJob", "logreg-tf")
    expect(k, ns, job, "Succeeded", "TFJobSucceeded")
    chief = k.api.get(f"/api/v1/namespaces/{ns}/pods/logreg-tf-chief-0")
    env = {e["name"]: e.get("value") for e in chief["spec"]["containers"][0]["env"]}
    tf = json.loads(env["TF_CONFIG"])
    assert tf["task"] == {"type": "chief", "index": 0}, tf
    assert tf["cluster"]["worker"][0] == f"logreg-tf-worker-0.{ns}.svc:2222", tf
    assert tf["cluster"]["chief"] == [f"logreg-tf-chief-0.{ns}.svc:2222"], tf
    rank, world, d = digest(pod_log(k, ns, "logreg-tf-chief-0", "tensorflow"))
    assert (rank, world) == (0, 3)
    assert "weights identical on all 3 rank(s)" in pod_log(k, ns, "logreg-tf-chief-0", "tensorflow")


@pytest.mark.parametrize("where,bad,field", [
    ("replicas", -1, "spec.pytorchReplicaSpecs.Worker.replicas: must not be negative (got -1)"),
    ("restartPolicy", "Sometimes", "spec.pytorchReplicaSpecs.Worker.restartPolicy"),
])
def test_invalid_spec_fails_and_the_controller_keeps_going(k, ns, where, bad, field):
    job = pytorchjob("invalid", workers=1)
    job["spec"]["pytorchReplicaSpecs"]["Worker"][where] = bad
    create_job(k, ns, job)
    job = wait_finished(k, ns, "PyTorchJob", "invalid", 30)
    c = expect(k, ns, job, "Failed", "InvalidSpec")
    assert field in c["message"], c
    assert not pods(k, ns, "invalid")
    assert k.controller.poll() is None, "the controller exited"
    create_job(k, ns, pytorchjob("valid-after", workers=1))
    expect(k, ns, wait_finished(k, ns, "PyTorchJob", "valid-after"), "Succeeded", "PyTorchJobSucceeded")


def sdk_train_func():
    # Runs in the pod through the SDK's bash script (no `$` here: the script is a bash heredoc).
    import os

    import numpy as np

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    assert (rank, world) == (0, 1), (rank, world)
    print("sdk train_func rank=%d world=%d master=%s:%s sum=%d" % (
        rank, world, os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"], int(np.arange(4).sum())))


def test_kubeflow_training_sdk(k, ns):
    """The stock kubeflow-training SDK against the controller: create, conditions, wait, pods,
    logs, delete (and the cluster's garbage collector removes the pods)."""
    from kubeflow.training import TrainingClient, models
    from kubernetes import client as k8s

    tc = TrainingClient(config_file=os.path.join(k.dir, "kubeconfig"), namespace=ns, job_kind="PyTorchJob")

    def template(args):
        return k8s.V1PodTemplateSpec(spec=k8s.V1PodSpec(containers=[k8s.V1Container(
            name="pytorch", image=PYTHON_IMAGE, command=["python3", DDP], args=args)]))

    job = models.KubeflowOrgV1PyTorchJob(
        api_version="kubeflow.org/v1", kind="PyTorchJob", metadata=k8s.V1ObjectMeta(name="sdk-job"),
        spec=models.KubeflowOrgV1PyTorchJobSpec(
            run_policy=models.KubeflowOrgV1RunPolicy(backoff_limit=2),
            pytorch_replica_specs={
                "Master": models.KubeflowOrgV1ReplicaSpec(replicas=1, restart_policy="OnFailure", template=template(FAST)),
                "Worker": models.KubeflowOrgV1ReplicaSpec(replicas=2, restart_policy="OnFailure", template=template(FAST)),
            }))
    tc.create_job(job)
    try:
        done = tc.wait_for_job_conditions("sdk-job", namespace=ns, job_kind="PyTorchJob", wait_timeout=180,
                                          polling_interval=1)
    except (RuntimeError, TimeoutError) as e:
        raise AssertionError(f"{e}\n\n{diagnose(k, ns, 'PyTorchJob', 'sdk-job')}") from None
    assert tc.is_job_succeeded("sdk-job", namespace=ns)
    types = [c.type for c in tc.get_job_conditions("sdk-job", namespace=ns)]
    assert "Created" in types and "Succeeded" in types, types
    assert done.status.replica_statuses["Worker"].succeeded == 2, done.status
    assert sorted(tc.get_job_pod_names("sdk-job", namespace=ns)) == [
        "sdk-job-master-0", "sdk-job-worker-0", "sdk-job-worker-1"]
    assert tc.get_job_pod_names("sdk-job", namespace=ns, is_master=True) == ["sdk-job-master-0"]
    assert tc.get_job_pod_names("sdk-job", namespace=ns, replica_type="worker", replica_index=1) == ["sdk-job-worker-1"]
    # get_job_logs reads pods/log, which the API server proxies to the node's kubelet: the test
    # node agent serves no kubelet API, so the SDK reports that it cannot read them.
    try:
        logs, _ = tc.get_job_logs("sdk-job", namespace=ns)
    except RuntimeError as e:
        assert "Failed to read logs for pod" in str(e), e
    else:
        assert "weights identical" in logs["sdk-job-master-0"], logs
    results = {digest(pod_log(k, ns, p, "pytorch")) for p in ("sdk-job-master-0", "sdk-job-worker-0", "sdk-job-worker-1")}
    assert len({d for _, _, d in results}) == 1 and {r for r, _, _ in results} == {0, 1, 2}, results

    tc.delete_job("sdk-job", namespace=ns)
    wait(k, ns, lambda: get_job(k, ns, "PyTorchJob", "sdk-job") is None, 30, "the job to be gone")
    wait(k, ns, lambda: not pods(k, ns, "sdk-job"), 60, "the garbage collector to delete the pods")
    wait(k, ns, lambda: not k.api.get(f"/api/v1/namespaces/{ns}/services",
                                      labelSelector="training.kubeflow.org/job-name=sdk-job")["items"],
         60, "the garbage collector to delete the Services")

    # A training function, as the SDK's docs do it: the SDK writes a bash script that saves the
    # function to a file and runs `python -u` on it in its default image (pytorch/pytorch, which
    # the node agent maps to this machine's programs). PATH leads to the repository's venv, where
    # numpy is. One worker: the SDK makes that a single Master (more would use torchrun).
    tc.create_job(name="sdk-func", train_func=sdk_train_func, num_workers=1,
                  env_vars={"PATH": f"{VENV_BIN}:{os.environ.get('PATH', os.defpath)}"})
    try:
        tc.wait_for_job_conditions("sdk-func", namespace=ns, wait_timeout=60, polling_interval=1)
    except (RuntimeError, TimeoutError) as e:
        raise AssertionError(f"{e}\n\n{diagnose(k, ns, 'PyTorchJob', 'sdk-func')}") from None
    assert tc.get_job_pod_names("sdk-func", namespace=ns) == ["sdk-func-master-0"]
    log = pod_log(k, ns, "sdk-func-master-0", "pytorch")
    assert "sdk train_func rank=0 world=1 master=sdk-func-master-0:23456 sum=6" in log, log


def test_same_name_recreated_right_after_delete_runs_its_own_pods(k, ns):
    """A job deleted and created again at once under the same name: the old job's pods, still
    there until the garbage collector removes them, belong to the old job (another owner uid)."""
    create_job(k, ns, pytorchjob("again", workers=1))
    expect(k, ns, wait_finished(k, ns, "PyTorchJob", "again"), "Succeeded", "PyTorchJobSucceeded")
    old = {p["metadata"]["uid"] for p in pods(k, ns, "again")}
    k.api.delete(job_path(ns, "PyTorchJob", "again"))
    wait(k, ns, lambda: get_job(k, ns, "PyTorchJob", "again") is None, 10, "the job to be gone")
    create_job(k, ns, pytorchjob("again", workers=1, args=["--seed", "7"]))
    job = wait_finished(k, ns, "PyTorchJob", "again")
    uid = job["metadata"]["uid"]
    expect(k, ns, job, "Succeeded", "PyTorchJobSucceeded")
    ps = pods(k, ns, "again")
    assert ps and all(p["metadata"]["uid"] not in old for p in ps), \
        f"the old job's pods counted as the new job's (uid {uid})\n\n{diagnose(k, ns, 'PyTorchJob', 'again')}"
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == uid for p in ps), [p["metadata"] for p in ps]
    assert all("--seed" in p["spec"]["containers"][0]["args"] for p in ps)
    svcs = k.api.get(f"/api/v1/namespaces/{ns}/services", labelSelector="training.kubeflow.org/job-name=again")["items"]
    assert sorted(s["metadata"]["name"] for s in svcs) == ["again-master-0", "again-worker-0"], svcs
    assert all(s["metadata"]["ownerReferences"][0]["uid"] == uid for s in svcs), [s["metadata"] for s in svcs]
