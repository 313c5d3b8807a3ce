"""Artifacts between tasks: a Dataset written by one task (with metadata) read by the next,
which writes a Model that the pipeline returns. Locally each artifact is a file under
`<pipeline root>/<run id>/<task>/<artifact name>` (its URI is that path).

Compile: python artifacts.py artifacts.yaml
Run:     osprey pipeline run artifacts.yaml -p rows=5
"""

import sys
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Model, Output


@dsl.component(base_image="python:3.11")
def make_data(rows: int, data: Output[Dataset]):
    with open(data.path, "w") as f:
        f.write("\n".join(str(i) for i in range(1, rows + 1)))
    data.metadata["rows"] = rows


@dsl.component(base_image="python:3.11")
def train(data: Input[Dataset], model: Output[Model]) -> int:
    with open(data.path) as f:
        values = [int(line) for line in f if line.strip()]
    with open(model.path, "w") as f:
        f.write(f"weights={sum(values)}")
    model.metadata["rows_seen"] = data.metadata["rows"]
    return sum(values)


@dsl.component(base_image="python:3.11")
def evaluate(model: Input[Model]) -> str:
    with open(model.path) as f:
        return f"{f.read()} rows_seen={model.metadata['rows_seen']}"


@dsl.pipeline(name="artifacts")
def artifacts(rows: int = 4) -> NamedTuple("Outputs", [("model", Model), ("report", str)]):
    d = make_data(rows=rows)
    t = train(data=d.outputs["data"])
    e = evaluate(model=t.outputs["model"])
    outputs = NamedTuple("Outputs", [("model", Model), ("report", str)])
    return outputs(model=t.outputs["model"], report=e.output)


if __name__ == "__main__":
    compiler.Compiler().compile(artifacts, sys.argv[1] if len(sys.argv) > 1 else "artifacts.yaml")
