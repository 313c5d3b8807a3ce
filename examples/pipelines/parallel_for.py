"""A dsl.ParallelFor loop: not supported by `osprey pipeline run` yet, which refuses it naming
the task (`task 'for-loop-2': not supported yet: parameterIterator (dsl.ParallelFor)`).

Compile: python parallel_for.py parallel_for.yaml
"""

import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def square(x: int) -> int:
    return x * x


@dsl.pipeline(name="parallel-for")
def parallel_for():
    with dsl.ParallelFor(items=[1, 2, 3]) as item:
        square(x=item)


if __name__ == "__main__":
    compiler.Compiler().compile(parallel_for, sys.argv[1] if len(sys.argv) > 1 else "parallel_for.yaml")
