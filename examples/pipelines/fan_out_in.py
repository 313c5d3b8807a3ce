"""Fan-out / fan-in: two independent tasks that sleep, each recording its start and end times
(epoch seconds) in its output, then a task that joins them and reports whether they overlapped.

Compile: python fan_out_in.py fan_out_in.yaml
Run:     osprey pipeline run fan_out_in.yaml -p seconds=2
"""

import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def work(label: str, seconds: float) -> dict:
    import time

    start = time.time()
    time.sleep(seconds)
    return {"label": label, "start": start, "end": time.time()}


@dsl.component(base_image="python:3.11")
def join(left: dict, right: dict) -> dict:
    overlap = min(left["end"], right["end"]) - max(left["start"], right["start"])
    return {"left": left, "right": right, "overlap_seconds": overlap}


@dsl.pipeline(name="fan-out-in")
def fan_out_in(seconds: float = 2.0) -> dict:
    a = work(label="a", seconds=seconds)
    b = work(label="b", seconds=seconds)
    return join(left=a.output, right=b.output).output


if __name__ == "__main__":
    compiler.Compiler().compile(fan_out_in, sys.argv[1] if len(sys.argv) > 1 else "fan_out_in.yaml")
