#!/usr/bin/env python3
"""Deterministically generate the Triton-style model repository in models/.

Usage (from the repository root):
    .venv/bin/python scripts/gen_models.py

Produces, for each model, models/<name>/config.pbtxt, models/<name>/1/model.onnx
and models/<name>/reference.json (outputs computed with onnxruntime on fixed
inputs). Re-running produces byte-identical files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"

ONNX_OPSET = 17
ML_OPSET = 3
IR_VERSION = 8

# numpy dtype -> KServe v2 datatype
V2_DTYPES = {
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
    np.dtype(np.int64): "INT64",
    np.dtype(np.int32): "INT32",
    np.dtype(np.bool_): "BOOL",
}


# --------------------------------------------------------------------------- helpers


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def write_model(path: Path, model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString(deterministic=True))


def v2_datatype(arr: np.ndarray) -> str:
    if arr.dtype.kind in ("U", "S", "O"):
        return "BYTES"
    return V2_DTYPES[arr.dtype]


def flat_data(arr: np.ndarray) -> list:
    flat = arr.reshape(-1)
    if arr.dtype.kind in ("U", "S", "O"):
        return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in flat]
    if arr.dtype.kind == "f":
        # float(np.float32) is exact; repr of the Python float round-trips.
        return [float(x) for x in flat]
    if arr.dtype.kind == "b":
        return [bool(x) for x in flat]
    return [int(x) for x in flat]


def tensor_json(name: str, arr: np.ndarray) -> dict:
    return {
        "name": name,
        "datatype": v2_datatype(arr),
        "shape": [int(d) for d in arr.shape],
        "data": flat_data(arr),
    }


def write_reference(name: str, cases: list[dict[str, np.ndarray]]) -> list[str]:
    """Run the model with onnxruntime on each input dict and store reference.json."""
    model_path = MODELS / name / "1" / "model.onnx"
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    doc_cases = []
    for feeds in cases:
        results = sess.run(out_names, feeds)
        doc_cases.append(
            {
                "inputs": [tensor_json(k, v) for k, v in feeds.items()],
                "outputs": [
                    tensor_json(n, np.asarray(r)) for n, r in zip(out_names, results)
                ],
            }
        )
    write_text(
        MODELS / name / "reference.json",
        json.dumps({"cases": doc_cases}, indent=1, ensure_ascii=False) + "\n",
    )
    return [
        f"  in  {i.name}: {i.type} {i.shape}" for i in sess.get_inputs()
    ] + [f"  out {o.name}: {o.type} {o.shape}" for o in sess.get_outputs()]


def strip_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Pin producer fields / ir_version so output doesn't depend on tool versions."""
    model.producer_name = "osprey-gen-models"
    model.producer_version = "1"
    model.domain = ""
    model.model_version = 1
    model.doc_string = ""
    model.ir_version = IR_VERSION
    # skl2onnx can emit the same opset import twice, in set order; keep one per
    # domain, sorted, so the file is reproducible.
    seen: dict[str, int] = {}
    for op in model.opset_import:
        seen[op.domain] = max(seen.get(op.domain, 0), op.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(seen.items()))
    return model


# --------------------------------------------------------------------------- mlp


def gen_mlp() -> list[str]:
    rng = np.random.default_rng(42)
    w1 = (rng.standard_normal((64, 32)) * 0.125).astype(np.float32)
    b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((32, 10)) * 0.18).astype(np.float32)
    b2 = (rng.standard_normal(10) * 0.1).astype(np.float32)

    graph = helper.make_graph(
        nodes=[
            helper.make_node("Gemm", ["input", "W1", "B1"], ["hidden_pre"], name="gemm1"),
            helper.make_node("Relu", ["hidden_pre"], ["hidden"], name="relu1"),
            helper.make_node("Gemm", ["hidden", "W2", "B2"], ["output"], name="gemm2"),
        ],
        name="mlp",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 10])],
        initializer=[
            numpy_helper.from_array(w1, "W1"),
            numpy_helper.from_array(b1, "B1"),
            numpy_helper.from_array(w2, "W2"),
            numpy_helper.from_array(b2, "B2"),
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)]
    )
    write_model(MODELS / "mlp" / "1" / "model.onnx", strip_metadata(model))

    write_text(
        MODELS / "mlp" / "config.pbtxt",
        """name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 64 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
dynamic_batching { }
# Small models: one intra-op thread, so that ONNX Runtime's spinning workers do not take the
# cores the request path needs (measured: see the README's benchmark section).
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
""",
    )

    in_rng = np.random.default_rng(1234)
    cases = [
        {"input": in_rng.standard_normal((3, 64)).astype(np.float32)},
        {"input": in_rng.standard_normal((1, 64)).astype(np.float32)},
    ]
    return write_reference("mlp", cases)


# --------------------------------------------------------------------------- linear


LINEAR_W = [1.0, -2.0, 3.0, 0.5]
LINEAR_B = 0.25


def gen_linear() -> list[str]:
    """y = x . w + b: the explainer's ground truth (Shapley values are w * (x - baseline))."""
    w = np.array(LINEAR_W, dtype=np.float32).reshape(4, 1)
    b = np.array([LINEAR_B], dtype=np.float32)
    graph = helper.make_graph(
        nodes=[helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="gemm")],
        name="linear",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    write_model(MODELS / "linear" / "1" / "model.onnx", strip_metadata(model))
    write_text(
        MODELS / "linear" / "config.pbtxt",
        """# y = x . [1, -2, 3, 0.5] + 0.25 (scripts/gen_models.py): the explainer's ground truth.
name: "linear"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
instance_group [ { count: 1 kind: KIND_CPU } ]
dynamic_batching { }
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
stages { explainer { method: KERNEL_SHAP target: "0" } }
""",
    )
    in_rng = np.random.default_rng(7)
    cases = [{"x": in_rng.standard_normal((2, 4)).astype(np.float32)}]
    return write_reference("linear", cases)


# --------------------------------------------------------------------------- identity


def gen_identity() -> list[str]:
    """A model that does no work: the transport's own limit in benchmarks."""
    graph = helper.make_graph(
        nodes=[helper.make_node("Identity", ["input"], ["output"], name="identity")],
        name="identity",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 64])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 64])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    write_model(MODELS / "identity" / "1" / "model.onnx", strip_metadata(model))
    write_text(
        MODELS / "identity" / "config.pbtxt",
        """name: "identity"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 64 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ 64 ]
  }
]
dynamic_batching { }
# Small models: one intra-op thread, so that ONNX Runtime's spinning workers do not take the
# cores the request path needs (measured: see the README's benchmark section).
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
""",
    )
    in_rng = np.random.default_rng(99)
    return write_reference("identity", [{"input": in_rng.standard_normal((2, 64)).astype(np.float32)}])


# --------------------------------------------------------------------------- heavy


def gen_heavy() -> list[str]:
    """An MLP heavy enough that batching must pay: 512 -> 2048 -> 2048 -> 10 (about 5.3M FP32
    weights, ~10.6 MFLOP per row), MatMul + Add + Relu, He-initialised so outputs stay O(1)."""
    rng = np.random.default_rng(2048)
    dims = [512, 2048, 2048, 10]
    weights = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        # He init for the Relu layers, plain 1/sqrt(fan_in) for the linear output layer.
        gain = 2.0 if i < len(dims) - 2 else 1.0
        w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(gain / fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        weights.append((w, b))

    nodes, initializers, x = [], [], "input"
    for i, (w, b) in enumerate(weights, start=1):
        last = i == len(weights)
        initializers += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"mm{i}"], name=f"matmul{i}"))
        add_out = "output" if last else f"pre{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"B{i}"], [add_out], name=f"add{i}"))
        if not last:
            nodes.append(helper.make_node("Relu", [add_out], [f"h{i}"], name=f"relu{i}"))
            x = f"h{i}"
    graph = helper.make_graph(
        nodes=nodes,
        name="heavy",
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 512])],
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 10])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    write_model(MODELS / "heavy" / "1" / "model.onnx", strip_metadata(model))
    write_text(
        MODELS / "heavy" / "config.pbtxt",
        """# FP32 MLP 512 -> 2048 -> 2048 -> 10 (scripts/gen_models.py): heavy enough that batching pays.
# No intra_op_thread_count: Osprey's automatic setting (--intra-op-threads 0).
name: "heavy"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 512 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
dynamic_batching { }
""",
    )
    in_rng = np.random.default_rng(512)
    cases = [
        {"input": in_rng.standard_normal((3, 512)).astype(np.float32)},
        {"input": in_rng.standard_normal((1, 512)).astype(np.float32)},
    ]
    return write_reference("heavy", cases)


# --------------------------------------------------------------------------- iris


IRIS_LABELS = ["setosa", "versicolor", "virginica"]


def gen_iris() -> list[str]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    x = iris.data.astype(np.float32)
    y = iris.target.astype(np.int64)
    assert list(iris.target_names) == IRIS_LABELS
    clf = LogisticRegression(max_iter=1000, random_state=0)
    clf.fit(x, y)

    onx = convert_sklearn(
        clf,
        name="iris",
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
    )
    write_model(MODELS / "iris" / "1" / "model.onnx", strip_metadata(onx))

    write_text(MODELS / "iris" / "labels.txt", "\n".join(IRIS_LABELS) + "\n")
    write_text(
        MODELS / "iris" / "config.pbtxt",
        """name: "iris"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {
    name: "float_input"
    data_type: TYPE_FP32
    dims: [ -1, 4 ]
  }
]
output [
  {
    name: "label"
    data_type: TYPE_INT64
    dims: [ -1 ]
  },
  {
    name: "probabilities"
    data_type: TYPE_FP32
    dims: [ -1, 3 ]
    label_filename: "labels.txt"
  }
]
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
""",
    )

    # one row of each class plus a borderline versicolor/virginica row
    rows = x[[0, 50, 100, 70]]
    cases = [
        {"float_input": rows},
        {"float_input": x[[149]]},
    ]
    return write_reference("iris", cases)


# --------------------------------------------------------------------------- text_sentiment


SENTENCES = [
    ("i love this movie", "positive"),
    ("what a great day", "positive"),
    ("this is wonderful", "positive"),
    ("absolutely fantastic experience", "positive"),
    ("i am very happy with it", "positive"),
    ("the food was delicious", "positive"),
    ("excellent service and friendly staff", "positive"),
    ("best purchase i have made", "positive"),
    ("i really enjoyed the show", "positive"),
    ("such a lovely and pleasant surprise", "positive"),
    ("highly recommend this product", "positive"),
    ("the weather is beautiful today", "positive"),
    ("great work well done", "positive"),
    ("i like it a lot", "positive"),
    ("amazing quality and fast delivery", "positive"),
    ("i hate this movie", "negative"),
    ("what a terrible day", "negative"),
    ("this is awful", "negative"),
    ("absolutely horrible experience", "negative"),
    ("i am very sad and angry", "negative"),
    ("the food was disgusting", "negative"),
    ("rude staff and bad service", "negative"),
    ("worst purchase i have made", "negative"),
    ("i really disliked the show", "negative"),
    ("such a boring and unpleasant evening", "negative"),
    ("do not buy this product", "negative"),
    ("the weather is miserable today", "negative"),
    ("poor work very disappointing", "negative"),
    ("i do not like it at all", "negative"),
    ("broken on arrival and slow delivery", "negative"),
]


def gen_text_sentiment() -> list[str]:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    texts = [s for s, _ in SENTENCES]
    labels = [l for _, l in SENTENCES]
    pipe = Pipeline(
        [
            # lowercase + simple word tokenization; both supported by skl2onnx
            ("tfidf", TfidfVectorizer(lowercase=True, token_pattern=r"\b\w+\b")),
            ("clf", LogisticRegression(C=10.0, max_iter=1000, random_state=0)),
        ]
    )
    pipe.fit(texts, labels)
    assert list(pipe.classes_) == ["negative", "positive"]

    onx = convert_sklearn(
        pipe,
        name="text_sentiment",
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(pipe.named_steps["clf"]): {"zipmap": False}},
        target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
    )
    # onnxruntime's StringNormalizer defaults to the "en_US.UTF-8" locale on
    # Linux and fails at session creation where that locale isn't installed
    # (e.g. slim containers). Pin the always-available "C" locale; all training
    # text is ASCII, so lower-casing behaves identically.
    n_norm = 0
    for node in onx.graph.node:
        if node.op_type == "StringNormalizer":
            del node.attribute[:]
            node.attribute.extend(
                [
                    helper.make_attribute("case_change_action", "LOWER"),
                    helper.make_attribute("is_case_sensitive", 0),
                    helper.make_attribute("locale", "C"),
                ]
            )
            n_norm += 1
    assert n_norm == 1, n_norm
    write_model(MODELS / "text_sentiment" / "1" / "model.onnx", strip_metadata(onx))

    write_text(
        MODELS / "text_sentiment" / "config.pbtxt",
        """name: "text_sentiment"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {
    name: "text"
    data_type: TYPE_STRING
    dims: [ -1, 1 ]
  }
]
output [
  {
    name: "label"
    data_type: TYPE_STRING
    dims: [ -1 ]
  },
  {
    name: "probabilities"
    data_type: TYPE_FP32
    dims: [ -1, 2 ]
  }
]
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
""",
    )

    cases = [
        {
            "text": np.array(
                [
                    ["I LOVE this wonderful product"],
                    ["the service was terrible and rude"],
                    ["quantum zebras juggle marmalade"],  # only unseen words
                    [" "],  # empty-ish
                ],
                dtype=object,
            )
        },
        {"text": np.array([["great"]], dtype=object)},
        {"text": np.array([[""]], dtype=object)},  # truly empty string
    ]
    return write_reference("text_sentiment", cases)


# --------------------------------------------------------------------------- main


def main() -> None:
    os.chdir(ROOT)
    report = {}
    for name, fn in [
        ("mlp", gen_mlp),
        ("linear", gen_linear),
        ("identity", gen_identity),
        ("heavy", gen_heavy),
        ("iris", gen_iris),
        ("text_sentiment", gen_text_sentiment),
    ]:
        report[name] = fn()

    for name, lines in report.items():
        print(f"{name} (onnxruntime {ort.__version__}):")
        for line in lines:
            print(line)
    print()
    for path in sorted(MODELS.rglob("*")):
        if path.is_file():
            print(f"{path.stat().st_size:>8}  {path.relative_to(ROOT)}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        # Only the named models, e.g. `gen_models.py linear`.
        os.chdir(ROOT)
        for name in sys.argv[1:]:
            print("\n".join(globals()[f"gen_{name}"]()))
    else:
        main()
