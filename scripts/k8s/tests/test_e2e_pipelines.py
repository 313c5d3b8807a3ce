"""End to end on a real control plane: PipelineRuns (pipelines.osprey.dev/v1alpha1) of pipelines
compiled by kfp 2.17.3 from examples/pipelines at test time, run by `osprey controller` as a
process: each task a pod of its component's image (the test node agent runs it), the `osprey`
binary copied in by an init container and acting as the launcher, outputs back through the
termination message, artifacts on a hostPath pipeline root. Covers parameters of every type,
control flow (If/Elif/Else, ParallelFor with a limit, Collected, a nested pipeline), a retry and
an exit handler, a spec from a ConfigMap, cancellation, and bad specs failing the run with a
message naming the task or field. Needs root, iproute2, target/debug/osprey and .venv-kfp;
skipped otherwise."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from agent_harness import full_cluster, wait_for
from test_e2e_inferenceservice import OSPREY, REPO
from test_e2e_training import Cluster, controller_on, diagnose, fresh_namespace

BRIDGE, CIDR, NODE = "ospk-br2", "10.251.0.0/16", "osprey-pipeline-node"
RUNS = "/apis/pipelines.osprey.dev/v1alpha1/namespaces/{ns}/pipelineruns"
KFP_PYTHON = os.path.join(REPO, ".venv-kfp", "bin", "python3")
EXAMPLES = os.path.join(REPO, "examples", "pipelines")


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    if not os.access(KFP_PYTHON, os.X_OK):
        pytest.skip(f"no {KFP_PYTHON} (scripts/setup.sh makes .venv-kfp)")
    yield from full_cluster(tmp_path_factory.mktemp("k8s-pipe"), BRIDGE, CIDR, NODE, OSPREY,
                            ["--cpu", "32", "--memory", "64Gi"])


@pytest.fixture(scope="module")
def k(control_plane):
    yield from controller_on(control_plane, ("pipelineruns.pipelines.osprey.dev",),
                             ("--image", "ghcr.io/osprey/osprey:test"))


@pytest.fixture
def ns(k):
    yield from fresh_namespace(k, "pl")


_compiled: dict[str, dict] = {}


def compiled(name: str, tmp_dir: str) -> dict:
    """examples/pipelines/<name>.py compiled by kfp 2.17.3, as a dict."""
    if name not in _compiled:
        out = os.path.join(tmp_dir, f"{name}.yaml")
        subprocess.run([KFP_PYTHON, os.path.join(EXAMPLES, f"{name}.py"), out], check=True, timeout=120)
        with open(out) as f:
            _compiled[name] = yaml.safe_load(f)
    return _compiled[name]


def pipeline_run(name: str, spec: dict | None, root: str, parameters: dict | None = None, **extra) -> dict:
    body = {"pipelineRoot": root,
            "pipelineRootVolume": {"hostPath": {"path": root, "type": "DirectoryOrCreate"}}, **extra}
    if spec is not None:
        body["pipelineSpec"] = spec
    if parameters:
        body["parameters"] = parameters
    return {"apiVersion": "pipelines.osprey.dev/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": name}, "spec": body}


def get_run(k: Cluster, ns: str, name: str) -> dict | None:
    return k.api.get_or_none(RUNS.format(ns=ns) + f"/{name}")


def wait_state(k: Cluster, ns: str, name: str, states: tuple[str, ...], timeout: float = 120) -> dict:
    def done():
        run = get_run(k, ns, name)
        return run if ((run or {}).get("status") or {}).get("state") in states else None
    try:
        return wait_for(done, timeout, f"PipelineRun {ns}/{name} to be {'/'.join(states)}", interval=0.3)
    except AssertionError as e:
        raise AssertionError(f"{e}\n\n{diagnose(k, ns, 'PipelineRun', name)}") from None


def failed_condition(run: dict) -> dict:
    return next(c for c in run["status"]["conditions"] if c["type"] == "Failed")


def test_a_chain_with_every_parameter_type_runs_as_pods(k, ns, tmp_path):
    root = str(tmp_path / "root")
    spec = compiled("types_chain", str(tmp_path))
    k.api.post(RUNS.format(ns=ns), pipeline_run("chain", spec, root, {
        "n": 4, "scale": 0.25, "label": "total", "double": False, "extra": [5, 6], "opts": {"tag": "x"}}))
    run = wait_state(k, ns, "chain", ("SUCCEEDED", "FAILED"))
    assert run["status"]["state"] == "SUCCEEDED", diagnose(k, ns, "PipelineRun", "chain")
    want = 'total=24.5 label=total-x4 doubled=false items=[1, 2, 3, 4, 5, 6] meta={"n": 4, "tag": "x"}'
    assert run["status"]["outputs"]["Output"] == want
    tasks = run["status"]["tasks"]
    assert tasks["add"]["outputs"]["parameters"]["Output"] == 8
    pods = k.api.get(f"/api/v1/namespaces/{ns}/pods").get("items", [])
    by_name = {p["metadata"]["name"]: p for p in pods}
    for t in ("add", "scale-by", "make-items", "summary"):
        assert tasks[t]["state"] == "SUCCEEDED"
        pod = by_name[tasks[t]["podName"]]
        assert pod["status"]["phase"] == "Succeeded"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "PipelineRun"
    cond = next(c for c in run["status"]["conditions"] if c["type"] == "Succeeded")
    assert cond["status"] == "True"
    # The same run again: every task from the namespace's cache, no pod.
    k.api.post(RUNS.format(ns=ns), pipeline_run("chain-again", spec, root, {
        "n": 4, "scale": 0.25, "label": "total", "double": False, "extra": [5, 6], "opts": {"tag": "x"}}))
    again = wait_state(k, ns, "chain-again", ("SUCCEEDED", "FAILED"))
    assert again["status"]["state"] == "SUCCEEDED", diagnose(k, ns, "PipelineRun", "chain-again")
    assert again["status"]["outputs"] == run["status"]["outputs"]
    assert all(t["cached"] for t in again["status"]["tasks"].values()), again["status"]["tasks"]
    pods = k.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="pipelines.osprey.dev/run=chain-again")
    assert pods.get("items", []) == []


def test_control_flow_retries_and_exit_handlers(k, ns, tmp_path):
    root = str(tmp_path / "root")
    k.api.post(RUNS.format(ns=ns), pipeline_run("flow", compiled("control_flow", str(tmp_path)), root,
                                                {"n": 3, "seconds": 0.0}))
    state = str(tmp_path / "state")
    k.api.post(RUNS.format(ns=ns), pipeline_run("retry", compiled("exit_retry", str(tmp_path)), root,
                                                {"state_dir": state, "fail_times": 1}))
    flow = wait_state(k, ns, "flow", ("SUCCEEDED", "FAILED"), timeout=240)
    assert flow["status"]["state"] == "SUCCEEDED", diagnose(k, ns, "PipelineRun", "flow")
    tasks = flow["status"]["tasks"]
    assert tasks["say-4"]["outputs"]["parameters"]["Output"] == "three"
    assert tasks["condition-branches-1/condition-2"]["state"] == "SKIPPED"
    assert tasks["total"]["outputs"]["parameters"]["Output"] == 55
    assert flow["status"]["outputs"]["Output"] == "a=4,b=9"
    assert tasks["double-it"]["outputs"]["parameters"]["Output"] == 9
    retry = wait_state(k, ns, "retry", ("SUCCEEDED", "FAILED"), timeout=120)
    assert retry["status"]["state"] == "SUCCEEDED", diagnose(k, ns, "PipelineRun", "retry")
    flaky = retry["status"]["tasks"]["exit-handler-1/flaky"]
    assert flaky["attempts"] == 2
    assert retry["status"]["tasks"]["report"]["outputs"]["parameters"]["Output"] == "SUCCEEDED"


def test_a_spec_from_a_config_map_and_cancellation(k, ns, tmp_path):
    root = str(tmp_path / "root")
    text = yaml.safe_dump(compiled("fan_out_in", str(tmp_path)))
    k.api.post(f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fan"}, "data": {"pipeline.yaml": text}})
    k.api.post(RUNS.format(ns=ns), pipeline_run("long", None, root, {"seconds": 600},
                                                pipelineSpecRef={"configMapName": "fan", "key": "pipeline.yaml"}))

    def both_running():
        run = get_run(k, ns, "long")
        tasks = ((run or {}).get("status") or {}).get("tasks") or {}
        return sum(1 for t in tasks.values() if t.get("state") == "RUNNING" and t.get("podName")) >= 2
    wait_for(both_running, 60, "two tasks running", interval=0.3)
    k.api.merge_patch(RUNS.format(ns=ns) + "/long", {"spec": {"cancel": True}})
    run = wait_state(k, ns, "long", ("CANCELED", "FAILED", "SUCCEEDED"), timeout=60)
    assert run["status"]["state"] == "CANCELED", diagnose(k, ns, "PipelineRun", "long")
    assert all(t["state"] in ("CANCELED", "SKIPPED") for t in run["status"]["tasks"].values()), run["status"]

    def pods_gone():
        pods = k.api.get(f"/api/v1/namespaces/{ns}/pods").get("items", [])
        return all(p["status"].get("phase") in ("Succeeded", "Failed") for p in pods)
    wait_for(pods_gone, 60, "the task pods to stop", interval=0.3)


@pytest.mark.parametrize("case", ["unknown-executor", "cycle", "missing-parameter"])
def test_bad_specs_fail_the_run_naming_the_task(k, ns, tmp_path, case):
    spec = yaml.safe_load(yaml.safe_dump(compiled("types_chain", str(tmp_path))))
    params = None
    if case == "unknown-executor":
        spec["components"]["comp-add"]["executorLabel"] = "exec-nope"
        want = "task 'add': executor 'exec-nope' not found"
    elif case == "cycle":
        spec["root"]["dag"]["tasks"]["add"]["dependentTasks"] = ["summary"]
        want = "dependency cycle between tasks"
    else:
        spec["root"]["inputDefinitions"]["parameters"]["n"].pop("defaultValue")
        spec["root"]["inputDefinitions"]["parameters"]["n"]["isOptional"] = False
        want = "parameter 'n': required"
    k.api.post(RUNS.format(ns=ns), pipeline_run("bad", spec, str(tmp_path / "root"), params))
    run = wait_state(k, ns, "bad", ("FAILED",), timeout=30)
    c = failed_condition(run)
    assert c["status"] == "True" and c["reason"] == "InvalidSpec", c
    assert want in c["message"], c
    assert k.api.get(f"/api/v1/namespaces/{ns}/pods").get("items", []) == []
    assert k.controller.poll() is None, "the controller is still running"
