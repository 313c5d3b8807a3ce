"""Drives a Katib Experiment with the stock Katib SDK (kubeflow-katib 0.19.0, run with
.venv-katib's Python by test_e2e_tuning.py): builds it from the SDK's own models, creates it with
KatibClient().create_experiment, waits with wait_for_experiment_condition, and reads
get_experiment_conditions and get_optimal_hyperparameters. Prints one JSON line prefixed
`RESULT ` with what it read."""

import argparse
import json

from kubeflow.katib import (
    KatibClient,
    V1beta1AlgorithmSetting,
    V1beta1AlgorithmSpec,
    V1beta1Experiment,
    V1beta1ExperimentSpec,
    V1beta1FeasibleSpace,
    V1beta1ObjectiveSpec,
    V1beta1ParameterSpec,
    V1beta1TrialParameterSpec,
    V1beta1TrialTemplate,
)
from kubernetes.client import V1ObjectMeta

p = argparse.ArgumentParser()
p.add_argument("--kubeconfig", required=True)
p.add_argument("--namespace", required=True)
p.add_argument("--name", required=True)
p.add_argument("--script", required=True, help="absolute path of examples/tuning/quadratic.py")
p.add_argument("--timeout", type=int, default=240)
a = p.parse_args()

trial_spec = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {"template": {"spec": {
        "containers": [{
            "name": "training-container",
            "image": "docker.io/library/python:3.11",
            "command": ["python3", a.script, "--x=${trialParameters.x}", "--y=${trialParameters.y}"],
        }],
        "restartPolicy": "Never",
    }}},
}
experiment = V1beta1Experiment(
    api_version="kubeflow.org/v1beta1",
    kind="Experiment",
    metadata=V1ObjectMeta(name=a.name, namespace=a.namespace),
    spec=V1beta1ExperimentSpec(
        max_trial_count=6,
        parallel_trial_count=3,
        max_failed_trial_count=1,
        algorithm=V1beta1AlgorithmSpec(
            algorithm_name="random",
            algorithm_settings=[V1beta1AlgorithmSetting(name="random_state", value="3")],
        ),
        objective=V1beta1ObjectiveSpec(type="maximize", goal=99.0, objective_metric_name="score",
                                       additional_metric_names=["loss"]),
        parameters=[
            V1beta1ParameterSpec(name="x", parameter_type="double",
                                 feasible_space=V1beta1FeasibleSpace(min="-5", max="5")),
            V1beta1ParameterSpec(name="y", parameter_type="double",
                                 feasible_space=V1beta1FeasibleSpace(min="-5", max="5")),
        ],
        trial_template=V1beta1TrialTemplate(
            primary_container_name="training-container",
            trial_parameters=[
                V1beta1TrialParameterSpec(name="x", description="first coordinate", reference="x"),
                V1beta1TrialParameterSpec(name="y", description="second coordinate", reference="y"),
            ],
            trial_spec=trial_spec,
        ),
    ),
)

client = KatibClient(config_file=a.kubeconfig, namespace=a.namespace)
client.create_experiment(experiment)
client.wait_for_experiment_condition(a.name, timeout=a.timeout, polling_interval=1)
conditions = client.get_experiment_conditions(a.name)
optimal = client.get_optimal_hyperparameters(a.name)
print("RESULT " + json.dumps({
    "conditions": [{"type": c.type, "status": c.status, "reason": c.reason} for c in conditions],
    "succeeded": client.is_experiment_succeeded(a.name),
    "optimal": {
        "best_trial_name": optimal.best_trial_name,
        "parameters": {p.name: p.value for p in optimal.parameter_assignments},
        "metrics": [{"name": m.name, "min": m.min, "max": m.max, "latest": m.latest}
                    for m in optimal.observation.metrics],
    } if optimal else None,
}))
