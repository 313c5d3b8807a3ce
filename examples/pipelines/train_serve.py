"""Train, convert, serve: scikit-learn's iris data set split into train and test Datasets, a
logistic regression trained on it (a pickled Model, its test accuracy as Metrics, and its
prediction for one fixed sample as an output parameter), then converted with skl2onnx into a
Triton-layout model repository that `osprey serve` loads as it is:

    <repository artifact>/<model_name>/config.pbtxt
    <repository artifact>/<model_name>/labels.txt
    <repository artifact>/<model_name>/1/model.onnx

The components install nothing (`packages_to_install=[]`): scikit-learn, skl2onnx and onnx come
from the environment the tasks run in (.venv-kfp, made by scripts/setup.sh).

Compile: python train_serve.py train_serve.yaml
Run:     osprey pipeline run train_serve.yaml -p sample='[5.9, 3.2, 4.8, 1.8]'
Serve:   osprey serve --model-repository <pipeline root>/<run id>/to-onnx/repository
         (the `repository` pipeline output's uri, in run.json), then ask it what `train` answered:
         curl -d '{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32",
                   "data":[5.9,3.2,4.8,1.8]}]}' localhost:8000/v2/models/iris-classifier/infer
"""

import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image="python:3.11", packages_to_install=[])
def load_data(
    test_fraction: float, seed: int, train_set: Output[Dataset], test_set: Output[Dataset]
):
    """Iris (shipped with scikit-learn) as two CSV files: the four features, then the class."""
    import csv

    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=test_fraction, random_state=seed, stratify=iris.target
    )
    header = list(iris.feature_names) + ["class"]
    for split, x, y in ((train_set, x_train, y_train), (test_set, x_test, y_test)):
        with open(split.path, "w", newline="") as f:
            out = csv.writer(f, lineterminator="\n")
            out.writerow(header)
            for row, cls in zip(x, y):
                out.writerow([repr(float(v)) for v in row] + [int(cls)])
        split.metadata["rows"] = len(y)
        split.metadata["columns"] = header
        split.metadata["classes"] = [str(c) for c in iris.target_names]


@dsl.component(base_image="python:3.11", packages_to_install=[])
def train(
    train_set: Input[Dataset],
    test_set: Input[Dataset],
    sample: list,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
) -> dict:
    """A logistic regression; returns its prediction for `sample` (what the server must answer)."""
    import csv
    import pickle

    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegression

    def read(path):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        x = np.array([[float(v) for v in r[:-1]] for r in rows[1:]])
        return x, np.array([int(r[-1]) for r in rows[1:]])

    x_train, y_train = read(train_set.path)
    x_test, y_test = read(test_set.path)
    classes = train_set.metadata["classes"]
    features = train_set.metadata["columns"][:-1]
    if len(sample) != len(features):
        raise ValueError(f"sample has {len(sample)} values, the model takes {len(features)}")

    clf = LogisticRegression(max_iter=1000, random_state=seed).fit(x_train, y_train)
    metrics.log_metric("accuracy", float(clf.score(x_test, y_test)))
    metrics.log_metric("test_rows", len(y_test))

    with open(model.path, "wb") as f:
        pickle.dump(clf, f)
    model.metadata["framework"] = f"scikit-learn {sklearn.__version__}"
    model.metadata["features"] = features
    model.metadata["classes"] = classes

    probabilities = clf.predict_proba(np.array([sample], dtype=np.float64))[0]
    index = int(np.argmax(probabilities))
    return {
        "sample": [float(v) for v in sample],
        "class_index": index,
        "label": classes[index],
        "probabilities": [float(p) for p in probabilities],
    }


@dsl.component(base_image="python:3.11", packages_to_install=[])
def to_onnx(model: Input[Model], model_name: str, repository: Output[Model]):
    """The pickled model as ONNX in a Triton-layout repository (plain tensors: zipmap off)."""
    import os
    import pickle

    import onnx
    import skl2onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    with open(model.path, "rb") as f:
        clf = pickle.load(f)
    features = len(model.metadata["features"])
    classes = model.metadata["classes"]
    onx = convert_sklearn(
        clf,
        name=model_name,
        initial_types=[("float_input", FloatTensorType([None, features]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    onnx.checker.check_model(onx)
    outputs = [o.name for o in onx.graph.output]
    if outputs != ["label", "probabilities"]:
        raise RuntimeError(f"unexpected ONNX outputs {outputs}")

    model_dir = os.path.join(repository.path, model_name)
    os.makedirs(os.path.join(model_dir, "1"))
    with open(os.path.join(model_dir, "1", "model.onnx"), "wb") as f:
        f.write(onx.SerializeToString())
    with open(os.path.join(model_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{c}\n" for c in classes))
    with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
        f.write(
            f"""name: "{model_name}"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {{ name: "float_input", data_type: TYPE_FP32, dims: [ -1, {features} ] }}
]
output [
  {{ name: "label", data_type: TYPE_INT64, dims: [ -1 ] }},
  {{
    name: "probabilities"
    data_type: TYPE_FP32
    dims: [ -1, {len(classes)} ]
    label_filename: "labels.txt"
  }}
]
instance_group [ {{ count: 1, kind: KIND_CPU }} ]
"""
        )
    repository.metadata["model_name"] = model_name
    repository.metadata["layout"] = "triton"
    repository.metadata["converter"] = f"skl2onnx {skl2onnx.__version__}"
    repository.metadata["opset"] = 17


@dsl.pipeline(name="train-serve")
def train_serve(
    test_fraction: float = 0.3,
    seed: int = 0,
    sample: list = [5.9, 3.2, 4.8, 1.8],
    model_name: str = "iris-classifier",
) -> NamedTuple("Outputs", [("repository", Model), ("metrics", Metrics), ("prediction", dict)]):
    data = load_data(test_fraction=test_fraction, seed=seed)
    trained = train(
        train_set=data.outputs["train_set"],
        test_set=data.outputs["test_set"],
        sample=sample,
        seed=seed,
    )
    onnx_task = to_onnx(model=trained.outputs["model"], model_name=model_name)
    outputs = NamedTuple(
        "Outputs", [("repository", Model), ("metrics", Metrics), ("prediction", dict)]
    )
    return outputs(
        repository=onnx_task.outputs["repository"],
        metrics=trained.outputs["metrics"],
        prediction=trained.outputs["Output"],
    )


if __name__ == "__main__":
    compiler.Compiler().compile(train_serve, sys.argv[1] if len(sys.argv) > 1 else "train_serve.yaml")
