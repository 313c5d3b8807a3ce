"""A failing task: `explode` raises, so `after-explode` (downstream of it) is not run, while
`independent` (not downstream) still runs to the end. The run fails.

Compile: python failing.py failing.yaml
Run:     osprey pipeline run failing.yaml   (exit code 1)
"""

import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def explode(message: str) -> str:
    raise RuntimeError(message)


@dsl.component(base_image="python:3.11")
def after_explode(text: str) -> str:
    return text


@dsl.component(base_image="python:3.11")
def independent(text: str) -> str:
    return text


@dsl.pipeline(name="failing")
def failing(message: str = "boom on purpose"):
    bad = explode(message=message)
    after_explode(text=bad.output)
    independent(text="still runs")


if __name__ == "__main__":
    compiler.Compiler().compile(failing, sys.argv[1] if len(sys.argv) > 1 else "failing.yaml")
