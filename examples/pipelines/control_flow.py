"""Control flow: dsl.If/Elif/Else on an upstream output (with dsl.OneOf), dsl.ParallelFor over
a literal list with a parallelism limit and dsl.Collected, dsl.ParallelFor over an upstream
task's list of dicts, and a pipeline used as a component.

Compile: python control_flow.py control_flow.yaml
Run:     osprey pipeline run control_flow.yaml -p n=7
"""

import sys
from typing import List

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def number(x: int) -> int:
    return x


@dsl.component(base_image="python:3.11")
def say(msg: str) -> str:
    print(msg)
    return msg


@dsl.component(base_image="python:3.11")
def square(x: int, seconds: float) -> int:
    import time

    time.sleep(seconds)
    return x * x


@dsl.component(base_image="python:3.11")
def total(xs: List[int]) -> int:
    return sum(xs)


@dsl.component(base_image="python:3.11")
def shapes() -> List[dict]:
    return [{"label": "a", "side": 2}, {"label": "b", "side": 3}]


@dsl.component(base_image="python:3.11")
def area(label: str, side: int) -> str:
    return f"{label}={side * side}"


@dsl.component(base_image="python:3.11")
def join(parts: List[str]) -> str:
    return ",".join(sorted(parts))


@dsl.pipeline(name="double-it")
def double_it(v: int) -> int:
    """A pipeline used as a component: its output is its inner task's."""
    return square(x=v, seconds=0.0).output


@dsl.pipeline(name="control-flow")
def control_flow(n: int = 3, seconds: float = 0.3) -> str:
    num = number(x=n)
    with dsl.If(num.output > 5):
        big = say(msg="big")
    with dsl.Elif(num.output == 3):
        three = say(msg="three")
    with dsl.Else():
        small = say(msg="small")
    say(msg=dsl.OneOf(big.output, three.output, small.output)).set_display_name("verdict")

    with dsl.ParallelFor(items=[1, 2, 3, 4, 5], parallelism=2) as i:
        sq = square(x=i, seconds=seconds)
    total(xs=dsl.Collected(sq.output))

    s = shapes()
    with dsl.ParallelFor(items=s.output) as shape:
        a = area(label=shape.label, side=shape.side)
    joined = join(parts=dsl.Collected(a.output))

    double_it(v=num.output)
    return joined.output


if __name__ == "__main__":
    compiler.Compiler().compile(control_flow, sys.argv[1] if len(sys.argv) > 1 else "control_flow.yaml")
