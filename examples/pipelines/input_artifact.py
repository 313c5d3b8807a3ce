"""A pipeline that takes an artifact as a pipeline input: not supported by `osprey pipeline run`
yet, which refuses it before anything runs (`pipeline: not supported yet: pipeline input
artifact 'data'`); bring an existing artifact in with dsl.importer instead.

Compile: python input_artifact.py input_artifact.yaml
"""

import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def count_lines(data: dsl.Input[dsl.Dataset]) -> int:
    with open(data.path) as f:
        return sum(1 for _ in f)


@dsl.pipeline(name="input-artifact")
def input_artifact(data: dsl.Input[dsl.Dataset]):
    count_lines(data=data)


if __name__ == "__main__":
    compiler.Compiler().compile(input_artifact, sys.argv[1] if len(sys.argv) > 1 else "input_artifact.yaml")
