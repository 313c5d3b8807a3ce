"""dsl.ExitHandler and retries: `flaky` fails its first `fail_times` attempts (counting them in
a file under `state_dir`) and is retried up to 3 times with back-off; the exit task runs after
the group whatever happened and receives its final status (dsl.PipelineTaskFinalStatus).

Compile: python exit_retry.py exit_retry.yaml
Run:     osprey pipeline run exit_retry.yaml -p state_dir=/tmp/flaky -p fail_times=2
"""

import sys

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def flaky(state_dir: str, fail_times: int) -> int:
    import os

    os.makedirs(state_dir, exist_ok=True)
    path = os.path.join(state_dir, "attempts")
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(n))
    if n <= fail_times:
        raise SystemExit(f"attempt {n}: failing on purpose")
    return n


@dsl.component(base_image="python:3.11")
def report(status: dsl.PipelineTaskFinalStatus) -> str:
    print(f"group {status.pipeline_task_name} ended {status.state}: {status.error_message}")
    return status.state


@dsl.pipeline(name="exit-retry")
def exit_retry(state_dir: str, fail_times: int = 2):
    final = report()
    with dsl.ExitHandler(final):
        flaky(state_dir=state_dir, fail_times=fail_times).set_retry(
            num_retries=3, backoff_duration="1s", backoff_factor=1.0, backoff_max_duration="1s"
        )


if __name__ == "__main__":
    compiler.Compiler().compile(exit_retry, sys.argv[1] if len(sys.argv) > 1 else "exit_retry.yaml")
