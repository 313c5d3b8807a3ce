"""A stand-in training script for tuning examples and tests: prints Katib-style metrics
(`score=...`, `loss=...`) for a smooth function of --x and --y whose maximum (score 10) is at
x=2, y=-1. --fail-above X exits 1 when x > X; --no-metrics prints none."""

import argparse
import sys

p = argparse.ArgumentParser()
p.add_argument("--x", type=float, required=True)
p.add_argument("--y", type=float, required=True)
p.add_argument("--fail-above", type=float, default=None)
p.add_argument("--no-metrics", action="store_true")
a = p.parse_args()
if a.fail_above is not None and a.x > a.fail_above:
    print(f"x={a.x} is too large: failing on purpose", file=sys.stderr)
    sys.exit(1)
score = 10.0 - (a.x - 2.0) ** 2 - (a.y + 1.0) ** 2
if not a.no_metrics:
    for step in range(3):
        # Intermediate values, worse than the final one (the objective takes the best).
        print(f"step={step} score={score - (2 - step)} loss={-score + (2 - step)}")
