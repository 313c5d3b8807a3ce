"""An arithmetic chain whose parameters have every KFP type: int, float, str, bool, list, dict.

Compile: python types_chain.py types_chain.yaml
Run:     osprey pipeline run types_chain.yaml -p n=3 -p scale=0.5
Final output (summary's Output) with the defaults (the compiler writes the list default [10] as [10.0]):
  total=20.5 label=sum-x3 doubled=true items=[1, 2, 3, 10.0] meta={"n": 3, "unused": 1.0}
"""

import sys
from typing import NamedTuple

from kfp import compiler, dsl


@dsl.component(base_image="python:3.11")
def add(a: int, b: int) -> int:
    return a + b


@dsl.component(base_image="python:3.11")
def scale_by(x: int, factor: float) -> float:
    return x * factor


@dsl.component(base_image="python:3.11")
def make_items(
    n: int, extra: list, opts: dict
) -> NamedTuple("Outputs", [("items", list), ("meta", dict)]):
    from collections import namedtuple

    out = namedtuple("Outputs", ["items", "meta"])
    return out(list(range(1, n + 1)) + extra, dict(opts, n=n))


@dsl.component(base_image="python:3.11")
def summary(
    total: float, label: str, doubled: bool, items: list, meta: dict, offset: float = 1.5
) -> str:
    assert isinstance(total, float) and isinstance(doubled, bool)
    assert isinstance(items, list) and isinstance(meta, dict)
    import json

    value = total + sum(items) + offset
    return (
        f"total={value} label={label}-x{meta['n']} doubled={str(doubled).lower()} "
        f"items={items} meta={json.dumps(meta, sort_keys=True)}"
    )


@dsl.pipeline(name="types-chain")
def types_chain(n: int = 3, scale: float = 0.5, label: str = "sum", double: bool = True,
                extra: list = [10], opts: dict = {"unused": 1}) -> str:
    s = add(a=n, b=n)  # 6
    f = scale_by(x=s.output, factor=scale)  # 3.0
    m = make_items(n=n, extra=extra, opts=opts)  # [1, 2, 3, 10]
    out = summary(total=f.output, label=label, doubled=double, items=m.outputs["items"],
                  meta=m.outputs["meta"])
    return out.output


if __name__ == "__main__":
    compiler.Compiler().compile(types_chain, sys.argv[1] if len(sys.argv) > 1 else "types_chain.yaml")
