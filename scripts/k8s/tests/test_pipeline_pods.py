"""Pipeline task pods on the test node agent and a kube-apiserver (the conftest fixtures):
termination messages (a fresh file bind-mounted at each container's terminationMessagePath,
read back into state.terminated.message; FallbackToLogsOnError), a binary that an init container
copies into an emptyDir run as the main container's command, the PipelineRun CRD from
deploy/crds accepted by the 1.20 API server and kubectl, and task pods of the shape
controller/src/pipeline/kube/pod.rs builds (built by hand here) running `osprey pipeline launch`
on compiled lightweight KFP components (examples/pipelines): the component's output comes back
in the pod's termination message, a failing component's error in its log tail."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
import yaml

from agent_harness import wait_for
from test_e2e_inferenceservice import OSPREY, REPO, kubectl
from test_node_agent import create_pod, log_of, wait_phase

from node_agent.api import ApiError

KFP_PYTHON = os.path.join(REPO, ".venv-kfp", "bin", "python3")
CRD_FILE = os.path.join(REPO, "deploy", "crds", "pipelineruns.pipelines.osprey.dev.yaml")
RUNS = "/apis/pipelines.osprey.dev/v1alpha1/namespaces/{ns}/pipelineruns"


def container_status(pod: dict, name: str, init: bool = False) -> dict:
    key = "initContainerStatuses" if init else "containerStatuses"
    return next(s for s in pod["status"][key] if s["name"] == name)


def terminated(pod: dict, name: str) -> dict:
    return container_status(pod, name)["state"]["terminated"]


def test_termination_message_file_becomes_the_message(api, agent, ns):
    create_pod(api, ns, "msg", {"restartPolicy": "Never", "containers": [
        {"name": "ok", "image": "busybox", "command": ["sh", "-c", "printf 'all done' > /dev/termination-log"]},
        {"name": "big", "image": "busybox", "command": ["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' x > /dev/termination-log"]},
        {"name": "custom", "image": "busybox", "terminationMessagePath": "/var/run/osprey-test/message",
         "command": ["sh", "-c", "printf custom > /var/run/osprey-test/message; exit 3"]},
        {"name": "silent", "image": "busybox", "command": ["sh", "-c", "echo not a message"]},
    ]})
    pod = wait_phase(api, ns, "msg", "Failed")
    assert terminated(pod, "ok")["message"] == "all done"
    big = terminated(pod, "big")["message"]
    assert big == "x" * 4096, f"kept {len(big)} bytes"
    custom = terminated(pod, "custom")
    assert (custom["exitCode"], custom["message"]) == (3, "custom")
    assert "message" not in terminated(pod, "silent")
    # Each container wrote its own file, not the host's /dev/termination-log.
    assert not os.path.exists("/dev/termination-log") or os.path.getsize("/dev/termination-log") == 0


def test_fallback_to_logs_on_error_only_when_the_file_is_empty_and_it_failed(api, agent, ns):
    fallback = {"image": "busybox", "terminationMessagePolicy": "FallbackToLogsOnError"}
    create_pod(api, ns, "fallback", {"restartPolicy": "Never", "containers": [
        {**fallback, "name": "fails", "command": ["sh", "-c", "echo step one; echo 'boom: no such table' >&2; exit 2"]},
        {**fallback, "name": "fails-with-file", "command": ["sh", "-c", "echo noise; printf 'from the file' > /dev/termination-log; exit 2"]},
        {**fallback, "name": "succeeds", "command": ["sh", "-c", "echo fine"]},
        {"name": "file-policy", "image": "busybox", "command": ["sh", "-c", "echo boom; exit 1"]},
    ]})
    pod = wait_phase(api, ns, "fallback", "Failed")
    fails = terminated(pod, "fails")
    assert fails["exitCode"] == 2 and fails["message"] == "step one\nboom: no such table", fails
    assert terminated(pod, "fails-with-file")["message"] == "from the file"
    assert "message" not in terminated(pod, "succeeds")
    assert "message" not in terminated(pod, "file-policy")
    assert pod["spec"]["containers"][3]["terminationMessagePolicy"] == "File"  # the API server's default


def test_init_container_copies_a_program_the_main_container_runs(api, agent, ns):
    tools = [{"name": "tools", "mountPath": "/osprey-test-tools"}]
    create_pod(api, ns, "copied", {
        "restartPolicy": "Never",
        "volumes": [{"name": "tools", "emptyDir": {}}],
        "initContainers": [{"name": "copy", "image": "busybox", "volumeMounts": tools, "command": [
            "sh", "-c",
            "printf '#!/bin/sh\\necho hello from \"$0\" \"$@\"\\n' > /osprey-test-tools/hello && chmod 755 /osprey-test-tools/hello"]}],
        "containers": [{"name": "main", "image": "python:3.11", "command": ["/osprey-test-tools/hello", "world"],
                        "volumeMounts": [{**tools[0], "readOnly": True}]}],
    })
    pod = wait_phase(api, ns, "copied", "Succeeded")
    assert terminated(pod, "main")["exitCode"] == 0
    assert log_of(agent, ns, "copied", "main") == "hello from /osprey-test-tools/hello world\n"
    assert container_status(pod, "main")["imageID"] == "osprey-agent-program:///osprey-test-tools/hello"


def _established(api, name: str) -> bool:
    crd = api.get_or_none(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in ((crd or {}).get("status") or {}).get("conditions") or [])


def test_the_pipelinerun_crd_is_served_by_the_1_20_api_server(api, cluster, ns):
    kubectl(cluster, "apply", "-f", CRD_FILE)  # kubectl 1.20's client-side validation included
    wait_for(lambda: _established(api, "pipelineruns.pipelines.osprey.dev"), 30, "the PipelineRun CRD")
    path = RUNS.format(ns=ns)
    body = {
        "apiVersion": "pipelines.osprey.dev/v1alpha1", "kind": "PipelineRun", "metadata": {"name": "r1"},
        "spec": {"pipelineSpec": {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}},
                 "parameters": {"n": 3, "opts": {"a": [1, 2]}, "label": "x"},
                 "pipelineRootVolume": {"hostPath": {"path": "/tmp/osprey-pipeline-root", "type": "DirectoryOrCreate"}},
                 "parallelism": 2},
    }
    created = api.post(path, body)
    spec = created["spec"]
    assert spec["enableCaching"] is True  # the schema's default
    assert spec["pipelineSpec"]["root"] == {"dag": {"tasks": {}}}  # kept as given
    assert spec["parameters"] == {"n": 3, "opts": {"a": [1, 2]}, "label": "x"}
    assert spec["pipelineRootVolume"]["hostPath"]["path"] == "/tmp/osprey-pipeline-root"
    status = {"state": "RUNNING", "tasks": {"for-loop-2[0]/square": {
        "state": "SUCCEEDED", "attempts": 1, "podName": "r1-for-loop-2-0-square-0123456789",
        "outputs": {"parameters": {"Output": 4}}, "cached": False}}}
    updated = api.merge_patch(f"{path}/r1/status", {"status": status})
    assert updated["status"]["tasks"]["for-loop-2[0]/square"]["outputs"] == {"parameters": {"Output": 4}}
    table = kubectl(cluster, "get", "pipelineruns", "-n", ns)
    assert "STATE" in table and "RUNNING" in table, table
    for bad, field in ((dict(body["spec"], parallelism=0), "spec.parallelism"),
                       (dict(body["spec"], pipelineRootVolume={"hostPath": {}}), "spec.pipelineRootVolume.hostPath.path")):
        with pytest.raises(ApiError) as e:
            api.post(path, {**body, "metadata": {"name": "bad-" + uuid.uuid4().hex[:6]}, "spec": bad})
        assert e.value.status == 422 and field in e.value.body, e.value
    with pytest.raises(ApiError) as e:
        api.merge_patch(f"{path}/r1/status", {"status": {"state": "BOGUS"}})
    assert e.value.status == 422 and "status.state" in e.value.body, e.value


# --- task pods running `osprey pipeline launch` ---

@pytest.fixture(scope="module")
def components(tmp_path_factory):
    """The executors of examples/pipelines/types_chain.py and failing.py, compiled with kfp."""
    if not os.access(OSPREY, os.X_OK):
        pytest.skip(f"no osprey binary at {OSPREY} (cargo build, or OSPREY_BIN)")
    if not os.access(KFP_PYTHON, os.X_OK):
        pytest.skip("no .venv-kfp (scripts/setup.sh makes it)")
    d = tmp_path_factory.mktemp("kfp")
    out = {}
    for name in ("types_chain", "failing"):
        path = d / f"{name}.yaml"
        subprocess.run([KFP_PYTHON, os.path.join(REPO, "examples", "pipelines", f"{name}.py"), str(path)],
                       check=True, capture_output=True, timeout=120)
        with open(path) as f:
            spec = yaml.safe_load(f)
        out.update(spec["deploymentSpec"]["executors"])
    return out


def task_pod(name: str, task: str, container: dict, executor_input: dict, definitions: dict) -> dict:
    """A task pod as pod.rs builds it (labels, the launcher init container, the main container's
    launcher command line with our own values $-escaped, the termination message)."""
    run, uid, root = "smoke", str(uuid.uuid4()), "/pipeline-root"

    def literal(s: str) -> str:
        return s.replace("$", "$$")

    command = ["/osprey/osprey", "pipeline", "launch", "--task", literal(task), "--run-name", run,
               "--run-id", uid, "--pipeline-root", root, "--outputs-file", "/dev/termination-log",
               "--output-definitions", literal(json.dumps(definitions)),
               "--executor-input", literal(json.dumps(executor_input)), "--",
               *container["command"], *container.get("args", [])]
    return {
        "metadata": {"name": name,
                     "labels": {"pipelines.osprey.dev/run": run, "pipelines.osprey.dev/run-uid": uid,
                                "pipelines.osprey.dev/task": task},
                     "annotations": {"pipelines.osprey.dev/task-path": task, "pipelines.osprey.dev/attempt": "0"}},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "osprey-launcher", "emptyDir": {}}, {"name": "pipeline-root", "emptyDir": {}}],
            "initContainers": [{
                "name": "osprey-launcher", "image": "ghcr.io/osprey/osprey:test",
                "command": ["osprey", "pipeline", "launch", "--copy-to", "/osprey/osprey"],
                "volumeMounts": [{"name": "osprey-launcher", "mountPath": "/osprey"}],
                "terminationMessagePolicy": "FallbackToLogsOnError"}],
            "containers": [{
                "name": "main", "image": container["image"], "command": command,
                "volumeMounts": [{"name": "osprey-launcher", "mountPath": "/osprey", "readOnly": True},
                                 {"name": "pipeline-root", "mountPath": root}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "FallbackToLogsOnError"}],
        },
    }


def executor_input(task: str, params: dict, outputs: list[str]) -> dict:
    task_dir = f"/pipeline-root/run/{task}"
    return {"inputs": {"parameterValues": params},
            "outputs": {"parameters": {o: {"outputFile": f"{task_dir}/{o}"} for o in outputs},
                        "outputFile": f"{task_dir}/executor_output.json"}}


def create_task_pod(api, ns: str, pod: dict) -> None:
    create_pod(api, ns, pod["metadata"]["name"], pod["spec"], pod["metadata"]["labels"])


def test_a_task_pod_runs_a_lightweight_component_and_reports_its_output(api, agent, ns, components):
    add = components["exec-add"]["container"]
    pod = task_pod("smoke-add", "add", add, executor_input("add", {"a": 2, "b": 3}, ["Output"]),
                   {"parameters": {"Output": {"parameterType": "NUMBER_INTEGER"}}})
    create_task_pod(api, ns, pod)
    done = wait_for(lambda: (p := api.get(f"/api/v1/namespaces/{ns}/pods/smoke-add"))["status"].get("phase")
                    in ("Succeeded", "Failed") and p, 120, "the task pod to finish")
    log = log_of(agent, ns, "smoke-add", "main")
    assert done["status"]["phase"] == "Succeeded", log + log_of(agent, ns, "smoke-add", "osprey-launcher")
    assert container_status(done, "osprey-launcher", init=True)["state"]["terminated"]["exitCode"] == 0
    assert json.loads(terminated(done, "main")["message"]) == {"parameters": {"Output": 5}, "artifacts": {}}
    assert "osprey pipeline launch: task 'add' succeeded" in log


def test_a_failing_component_fails_its_pod_with_the_error_in_the_message(api, agent, ns, components):
    explode = components["exec-explode"]["container"]
    pod = task_pod("smoke-explode", "explode", explode,
                   executor_input("explode", {"message": "costs $(PRICE) $$ on purpose"}, ["Output"]),
                   {"parameters": {"Output": {"parameterType": "STRING"}}})
    create_task_pod(api, ns, pod)
    done = wait_phase(api, ns, "smoke-explode", "Failed", timeout=120)
    main = terminated(done, "main")
    assert main["exitCode"] == 1
    # The message arrived as written ($-escaped against Kubernetes' $(VAR) expansion).
    assert "RuntimeError: costs $(PRICE) $$ on purpose" in main["message"], main
    assert "the command exited with code 1" in main["message"], main
