"""Container components (dsl.container_component): plain shell commands whose inputs and outputs
are placeholders in their command line, `{{$.inputs.parameters['x']}}`,
`{{$.outputs.parameters['y'].output_file}}` and `{{$.outputs.artifacts['m'].path}}`, resolved by
the runner. Locally the image is not used: the command runs on this machine.

Compile: python container_components.py container_components.yaml
Run:     osprey pipeline run container_components.yaml -p word=hello -p times=3
"""

import sys

from kfp import compiler, dsl
from kfp.dsl import Dataset, Input, Output, OutputPath


@dsl.container_component
def repeat(word: str, times: int, text: Output[Dataset], count: OutputPath(int)):
    return dsl.ContainerSpec(
        image="alpine:3.20",
        command=["sh", "-c"],
        args=[
            'for i in $(seq "$1"); do printf "%s\\n" "$0"; done > "$2" && printf "%s" "$1" > "$3"',
            word,
            times,
            text.path,
            count,
        ],
    )


@dsl.container_component
def shout(text: Input[Dataset], count: int, loud: OutputPath(str)):
    return dsl.ContainerSpec(
        image="alpine:3.20",
        command=["sh", "-c", 'printf "%s x%s" "$(tr a-z A-Z < "$0" | tr "\\n" " ")" "$1" > "$2"'],
        args=[text.path, count, loud],
    )


@dsl.container_component
def tag(text: str, out: OutputPath(str), prefix: str = None):
    """Structured placeholders: IfPresent (an optional input) and Concat."""
    return dsl.ContainerSpec(
        image="alpine:3.20",
        command=["sh", "-c", 'printf "%s" "$*" > "$0"'],
        args=[
            out,
            dsl.IfPresentPlaceholder(
                input_name="prefix", then=[dsl.ConcatPlaceholder([prefix, ":"])], else_=["none:"]
            ),
            dsl.ConcatPlaceholder(["<", text, ">"]),
        ],
    )


@dsl.pipeline(name="container-components")
def container_components(word: str = "hi", times: int = 2) -> str:
    r = repeat(word=word, times=times)
    loud = shout(text=r.outputs["text"], count=r.outputs["count"]).output
    tag(text=word)
    tag(text=word, prefix="P")
    return loud


if __name__ == "__main__":
    compiler.Compiler().compile(
        container_components, sys.argv[1] if len(sys.argv) > 1 else "container_components.yaml"
    )
