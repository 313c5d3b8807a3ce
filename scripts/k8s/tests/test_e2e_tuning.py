"""End to end on a real control plane: Katib Experiments and Trials (kubeflow.org/v1beta1) run by
`osprey controller` as a process, each trial a batch Job (kube-controller-manager makes its pod,
the test node agent runs examples/tuning/quadratic.py in it), its metrics collected by the
`osprey` binary wrapping the trial's command (copied in by an init container) and read back from
the termination message. Covers the stock Katib SDK (kubeflow-katib 0.19.0 in .venv-katib:
create_experiment, wait_for_experiment_condition, get_experiment_conditions,
get_optimal_hyperparameters), the goal (a template from a ConfigMap), maxFailedTrialCount, MetricsUnavailable, medianstop
early stopping through the collector, and invalid
experiments failing with reason InvalidSpec and a message naming the field. Needs root,
iproute2, target/debug/osprey and .venv-katib; skipped otherwise."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from agent_harness import full_cluster, wait_for
from test_e2e_inferenceservice import OSPREY, REPO
from test_e2e_training import Cluster, controller_on, fresh_namespace

BRIDGE, CIDR, NODE = "ospk-br3", "10.252.0.0/16", "osprey-tuning-node"
EXPERIMENTS = "/apis/kubeflow.org/v1beta1/namespaces/{ns}/experiments"
TRIALS = "/apis/kubeflow.org/v1beta1/namespaces/{ns}/trials"
KATIB_PYTHON = os.path.join(REPO, ".venv-katib", "bin", "python")
SCRIPT = os.path.join(REPO, "examples", "tuning", "quadratic.py")
SDK_CLIENT = os.path.join(os.path.dirname(__file__), "katib_sdk_client.py")


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory):
    if not os.access(KATIB_PYTHON, os.X_OK):
        pytest.skip(f"no {KATIB_PYTHON} (scripts/setup.sh makes .venv-katib)")
    yield from full_cluster(tmp_path_factory.mktemp("k8s-tune"), BRIDGE, CIDR, NODE, OSPREY,
                            ["--cpu", "32", "--memory", "64Gi"])


@pytest.fixture(scope="module")
def k(control_plane):
    yield from controller_on(control_plane, ("experiments.kubeflow.org", "trials.kubeflow.org"),
                             ("--image", "ghcr.io/osprey/osprey:test"))


@pytest.fixture
def ns(k):
    yield from fresh_namespace(k, "tu")


def score(x: float, y: float) -> float:
    return 10.0 - (x - 2.0) ** 2 - (y + 1.0) ** 2


def experiment(name: str, algorithm: dict, parameters: list, args: list[str], **spec) -> dict:
    return {
        "apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "score",
                          "additionalMetricNames": ["loss"]},
            "algorithm": algorithm,
            "parameters": parameters,
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": "x", "reference": "x"}, {"name": "y", "reference": "y"}],
                "trialSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
                    "containers": [{"name": "training-container", "image": "docker.io/library/python:3.11",
                                    "command": ["python3", SCRIPT, "--x=${trialParameters.x}",
                                                "--y=${trialParameters.y}", *args]}],
                    "restartPolicy": "Never"}}, "backoffLimit": 0}},
            },
            **spec,
        },
    }


def grid(xs: list[str], ys: list[str]) -> list[dict]:
    return [{"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": xs}},
            {"name": "y", "parameterType": "discrete", "feasibleSpace": {"list": ys}}]


def condition(obj: dict | None, type_: str) -> dict | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_ and c["status"] == "True":
            return c
    return None


def finished(k: Cluster, ns: str, name: str, timeout: float = 180) -> dict:
    path = EXPERIMENTS.format(ns=ns) + "/" + name
    def done():
        e = k.api.get_or_none(path)
        return e if (condition(e, "Succeeded") or condition(e, "Failed")) else None
    return wait_for(done, timeout, f"experiment {ns}/{name} to finish")


def trials(k: Cluster, ns: str, name: str) -> list[dict]:
    items = k.api.get(TRIALS.format(ns=ns) + f"?labelSelector=katib.kubeflow.org/experiment={name}")["items"]
    return sorted(items, key=lambda t: int(t["metadata"]["annotations"]["tuning.osprey.dev/index"]))


def test_the_katib_sdk_runs_an_experiment_of_jobs(k, ns):
    name = "sdk-random"
    out = subprocess.run([KATIB_PYTHON, SDK_CLIENT, "--kubeconfig", os.path.join(k.dir, "kubeconfig"),
                          "--namespace", ns, "--name", name, "--script", SCRIPT, "--timeout", "240"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    assert result["succeeded"] is True
    succeeded = [c for c in result["conditions"] if c["type"] == "Succeeded"]
    assert succeeded and succeeded[0]["reason"] == "ExperimentMaxTrialsReached", result
    exp = k.api.get(EXPERIMENTS.format(ns=ns) + "/" + name)
    st = exp["status"]
    assert (st["trials"], st["trialsSucceeded"], st["trialsFailed"]) == (6, 6, 0), st
    ts = trials(k, ns, name)
    assert len(ts) == 6
    best = None
    for t in ts:
        assert condition(t, "Succeeded"), t.get("status")
        p = {a["name"]: float(a["value"]) for a in t["spec"]["parameterAssignments"]}
        assert -5 <= p["x"] <= 5 and -5 <= p["y"] <= 5
        m = {m["name"]: m for m in t["status"]["observation"]["metrics"]}
        # The objective is the best of the three reports (max), the final one; loss the latest.
        assert float(m["score"]["max"]) == pytest.approx(score(p["x"], p["y"]), abs=1e-9)
        assert float(m["score"]["min"]) == pytest.approx(score(p["x"], p["y"]) - 2, abs=1e-9)
        assert float(m["loss"]["latest"]) == pytest.approx(-score(p["x"], p["y"]), abs=1e-9)
        if best is None or float(m["score"]["max"]) > best[0]:
            best = (float(m["score"]["max"]), t["metadata"]["name"], p)
    opt = result["optimal"]
    assert opt["best_trial_name"] == best[1]
    assert {n: float(v) for n, v in opt["parameters"].items()} == best[2]
    # Finished trials' Jobs are deleted (retain is false).
    wait_for(lambda: not k.api.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"], 60,
             "the trials' Jobs to be deleted")


def test_goal_max_failed_and_metrics_unavailable(k, ns):
    # The grid's first point is the optimum (score 10): the goal stops the experiment at once.
    # Its trial template comes from a ConfigMap.
    goal = experiment(
        "goal", {"algorithmName": "grid"}, grid(["2", "3"], ["-1", "0"]), [],
        parallelTrialCount=1, maxTrialCount=4, objective={
            "type": "maximize", "goal": 9.99, "objectiveMetricName": "score"})
    template = goal["spec"]["trialTemplate"].pop("trialSpec")
    k.api.post(f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "trial-templates"},
        "data": {"quadratic.yaml": yaml.safe_dump(template)}})
    goal["spec"]["trialTemplate"]["configMap"] = {"configMapName": "trial-templates",
                                                  "templatePath": "quadratic.yaml"}
    k.api.post(EXPERIMENTS.format(ns=ns), goal)
    # Every trial fails (x > 1): the second failure is more than maxFailedTrialCount 1.
    k.api.post(EXPERIMENTS.format(ns=ns), experiment(
        "failing", {"algorithmName": "grid"}, grid(["2", "3", "4"], ["0"]), ["--fail-above", "1"],
        parallelTrialCount=1, maxTrialCount=3, maxFailedTrialCount=1))
    # No metric printed: MetricsUnavailable, not a success, and no optimal trial.
    k.api.post(EXPERIMENTS.format(ns=ns), experiment(
        "silent", {"algorithmName": "random"}, grid(["1"], ["1"]), ["--no-metrics"],
        parallelTrialCount=1, maxTrialCount=1))
    # medianstop after 2 succeeded trials, from the 2nd report: the third trial (score -15)
    # reports -17, -16 against a median first-two-reports average of 8: stopped at -16.
    k.api.post(EXPERIMENTS.format(ns=ns), experiment(
        "median", {"algorithmName": "grid"}, grid(["2", "-3"], ["-1", "0"]), [],
        parallelTrialCount=1, maxTrialCount=3, earlyStopping={
            "algorithmName": "medianstop", "algorithmSettings": [
                {"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "2"}]}))
    goal = finished(k, ns, "goal")
    c = condition(goal, "Succeeded")
    assert c and c["reason"] == "ExperimentGoalReached", goal["status"]
    assert goal["status"]["trials"] == 1
    assert goal["status"]["currentOptimalTrial"]["parameterAssignments"] == [
        {"name": "x", "value": "2"}, {"name": "y", "value": "-1"}]
    failing = finished(k, ns, "failing")
    c = condition(failing, "Failed")
    assert c and c["reason"] == "ExperimentMaxFailedTrialsReached", failing["status"]
    assert failing["status"]["trialsFailed"] == 2
    assert all(condition(t, "Failed") for t in trials(k, ns, "failing"))
    silent = finished(k, ns, "silent")
    assert condition(silent, "Succeeded"), silent["status"]
    assert silent["status"]["trialMetricsUnavailable"] == 1
    assert not silent["status"]["currentOptimalTrial"].get("bestTrialName")
    assert condition(trials(k, ns, "silent")[0], "MetricsUnavailable")
    median = finished(k, ns, "median")
    assert condition(median, "Succeeded"), median["status"]
    assert median["status"]["trialsEarlyStopped"] == 1, median["status"]
    first, second, third = trials(k, ns, "median")
    assert first["spec"].get("earlyStoppingRules") is None and condition(second, "Succeeded")
    rule = third["spec"]["earlyStoppingRules"][0]
    assert (rule["name"], rule["comparison"], float(rule["value"]), rule["startStep"]) == \
        ("score", "less", 8.0, 2), rule
    assert condition(third, "EarlyStopped"), third.get("status")
    m = {m["name"]: m for m in third["status"]["observation"]["metrics"]}
    assert float(m["score"]["latest"]) == -16.0, m


INVALID = [
    (lambda s: s.update(parameters=[]), "spec.parameters"),
    (lambda s: s["parameters"][0].update(parameterType="double", feasibleSpace={"min": "5", "max": "1"}),
     "spec.parameters[0].feasibleSpace.min"),
    (lambda s: s.update(algorithm={"algorithmName": "simulated-annealing"}), "spec.algorithm.algorithmName"),
    (lambda s: s.update(algorithm={"algorithmName": "random", "algorithmSettings": [{"name": "temperature", "value": "1"}]}),
     "spec.algorithm.algorithmSettings[0].name"),
    (lambda s: s["trialTemplate"]["trialParameters"].append({"name": "lr", "reference": "lr"}),
     "spec.trialTemplate.trialParameters[2].reference"),
    (lambda s: s["trialTemplate"].update(primaryContainerName="missing"), "spec.trialTemplate.primaryContainerName"),
]


def test_invalid_experiments_fail_naming_the_field(k, ns):
    for i, (change, _) in enumerate(INVALID):
        exp = experiment(f"bad-{i}", {"algorithmName": "random"}, grid(["1"], ["1"]), [])
        change(exp["spec"])
        k.api.post(EXPERIMENTS.format(ns=ns), exp)
    for i, (_, field) in enumerate(INVALID):
        e = finished(k, ns, f"bad-{i}", timeout=60)
        c = condition(e, "Failed")
        assert c and c["reason"] == "InvalidSpec", e.get("status")
        assert field in c["message"], c["message"]
        assert trials(k, ns, f"bad-{i}") == []
