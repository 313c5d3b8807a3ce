#!/usr/bin/env python3
"""Benchmark of Osprey's tuning algorithms against optuna 5.0's samplers.

Not run by CI or the tests. Set up once with `scripts/setup-bench.sh` (.venv-bench: optuna 5.0.0,
numpy, scikit-learn 1.9.1), then from the repository root:

    .venv-bench/bin/python scripts/tune_benchmark.py --osprey /work/bench-bin/osprey \\
        --jobs 2 --out tune-benchmark.md

Problems (--problems, default all three):
  branin     Branin, 2-d, minimise; known optimum 0.397887.
  hartmann6  Hartmann-6, 6-d on [0, 1]^6, minimise; known optimum -3.32237.
  gbm        examples/tuning/gbm.py's evaluate(): a GradientBoostingClassifier's 5-fold
             cross-validated accuracy (maximise), over n_estimators [5, 30], learning_rate
             [0.01, 1] (log), max_depth [1, 3], subsample [0.5, 1]. Its optimum is unknown: regret
             is measured against the best accuracy found by any method, seed and trial in the same
             run of this script (so GBM regrets of two runs with other methods are not comparable).

Methods: Osprey's algorithms (--algorithms, default random,tpe,bayesianoptimization,hyperband)
driven one trial at a time through `osprey tune suggest EXPERIMENT --trials FILE --count 1` (the
script writes an Experiment with the problem's space and `random_state: <seed>`, asks for one
assignment, evaluates it in this process, appends it to the trials file as Succeeded, and asks
again), and optuna's RandomSampler and TPESampler (--optuna, default random,tpe; seeded, default
settings, study.optimize one trial at a time). Both sides call the same evaluation code. An
algorithm the binary refuses (exit code 2: unknown algorithm or setting) is skipped with a note.
hyperband needs a resource parameter: for gbm it is n_estimators (resource_name n_estimators,
eta 3, r_l 30); Branin and Hartmann-6 have no honest fidelity, so hyperband is n/a there. A
hyperband trial counts as one trial whatever its resource.

Each (problem, method, seed) is one run of the largest budget; the smaller budgets are its
prefixes (--budgets 25,50: the 25-trial figure is the first 25 trials of the 50-trial run).
Regret at budget b: |best value in the first b trials - optimum|. A run whose algorithm ends the
search early keeps its best value for the larger budgets. Nothing is cached across methods (no
evaluation is reused; only gbm's data set and folds are loaded once per worker process).

Output: a markdown table (median regret and interquartile range per problem x method x budget,
and the median wall time per run and its part spent suggesting) on stdout and in --out, and
every run's trials in --raw (default: --out with .json).

Flags:
  --osprey PATH         the osprey binary (default /work/bench-bin/osprey, else target/release/osprey)
  --algorithms LIST     Osprey algorithms (comma-separated; '' for none)
  --optuna LIST         optuna samplers: random, tpe ('' for none)
  --problems LIST       branin, hartmann6, gbm
  --seeds N             seeds 0..N-1 (default 20)
  --budgets LIST        trial budgets (default 25,50); runs are as long as the largest
  --jobs N              worker processes over the runs (default 1)
  --hyperband SETTINGS  hyperband's algorithmSettings for gbm, name=value,... (default
                        resource_name=n_estimators,eta=3,r_l=30)
  --out FILE            the markdown table (default tune-benchmark.md)
  --raw FILE            the raw results JSON (default: --out with .json)

Cost: gbm dominates. One evaluation is 0.06-0.45 s of fitting (0.2 s for a random point,
0.3-0.4 s for the larger models the model-based methods settle on); one `osprey tune suggest`
call is 15-20 ms (a process start). The default run (3 problems x 6 methods x 20 seeds x 50
trials; hyperband only on gbm) is estimated at about 30 minutes of CPU on a 2-core machine, so
about 15 minutes of wall time with --jobs 2 when the cores are free (more when other work shares
them: a 3-seed run of random,tpe, 36 runs, took 451 CPU-s and 237 s wall with --jobs 2 at a load
of about 3).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool

# One thread per worker: --jobs processes, not threads inside them, share the cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "tuning"))

# --- Problems -------------------------------------------------------------------------------


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_ALPHA = [1.0, 1.2, 3.0, 3.2]
_H_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
_H_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]


def hartmann6(p):
    x = [p[f"x{i}"] for i in range(1, 7)]
    total = 0.0
    for i in range(4):
        inner = sum(_H_A[i][j] * (x[j] - _H_P[i][j] * 1e-4) ** 2 for j in range(6))
        total += _H_ALPHA[i] * math.exp(-inner)
    return -total


def gbm(p):
    import gbm as g  # examples/tuning/gbm.py

    accuracy, _ = g.evaluate(p["n_estimators"], p["learning_rate"], p["max_depth"], p["subsample"])
    return accuracy


def dbl(name, lo, hi, log=False):
    return {"name": name, "type": "double", "min": lo, "max": hi, "log": log}


def integer(name, lo, hi):
    return {"name": name, "type": "int", "min": lo, "max": hi, "log": False}


PROBLEMS = {
    "branin": {
        "f": branin,
        "maximize": False,
        "optimum": 0.397887,
        "space": [dbl("x1", -5.0, 10.0), dbl("x2", 0.0, 15.0)],
        "resource": None,
    },
    "hartmann6": {
        "f": hartmann6,
        "maximize": False,
        "optimum": -3.32237,
        "space": [dbl(f"x{i}", 0.0, 1.0) for i in range(1, 7)],
        "resource": None,
    },
    "gbm": {
        "f": gbm,
        "maximize": True,
        "optimum": None,  # the best found in this run
        "space": [
            integer("n_estimators", 5, 30),
            dbl("learning_rate", 0.01, 1.0, log=True),
            integer("max_depth", 1, 3),
            dbl("subsample", 0.5, 1.0),
        ],
        # hyperband's resource: the parameter and Katib's settings for it.
        "resource": {"resource_name": "n_estimators", "eta": "3", "r_l": "30"},
    },
}

# --- Osprey through `osprey tune suggest` ---------------------------------------------------


def experiment_yaml(problem, algorithm, seed, budget):
    pr = PROBLEMS[problem]
    settings = [("random_state", str(seed))]
    if algorithm == "hyperband":
        settings += list(pr["resource"].items())
    lines = [
        "apiVersion: kubeflow.org/v1beta1",
        "kind: Experiment",
        f"metadata: {{name: bench-{problem}-{algorithm}-{seed}}}",
        "spec:",
        f"  objective: {{type: {'maximize' if pr['maximize'] else 'minimize'}, objectiveMetricName: objective}}",
        "  algorithm:",
        f"    algorithmName: {algorithm}",
        "    algorithmSettings:",
    ]
    lines += [f"      - {{name: {k}, value: \"{v}\"}}" for k, v in settings]
    lines += ["  parallelTrialCount: 1", f"  maxTrialCount: {budget}", "  parameters:"]
    for p in pr["space"]:
        fs = f'min: "{p["min"]}", max: "{p["max"]}"'
        if p["log"]:
            fs += ", distribution: logUniform"
        lines.append(f"    - {{name: {p['name']}, parameterType: {p['type']}, feasibleSpace: {{{fs}}}}}")
    lines += [
        "  trialTemplate:",
        "    primaryContainerName: c",
        "    trialSpec:",
        "      apiVersion: batch/v1",
        "      kind: Job",
        "      spec: {template: {spec: {containers: [{name: c, command: [\"true\"]}]}}}",
    ]
    return "\n".join(lines) + "\n"


def typed(problem, assignment):
    out = {}
    for p in PROBLEMS[problem]["space"]:
        v = assignment[p["name"]]
        out[p["name"]] = int(float(v)) if p["type"] == "int" else float(v)
    return out


class Refused(Exception):
    pass


def osprey_suggest(binary, exp_path, trials_path):
    r = subprocess.run(
        [binary, "tune", "suggest", exp_path, "--trials", trials_path, "--count", "1"],
        capture_output=True,
        text=True,
    )
    if r.returncode == 2:
        raise Refused((r.stderr or r.stdout).strip())
    if r.returncode != 0:
        raise RuntimeError(f"osprey tune suggest: exit {r.returncode}: {r.stderr.strip()}")
    line = r.stdout.strip().splitlines()
    if not line:
        return None
    return {a["name"]: a["value"] for a in json.loads(line[0])}


def run_osprey(binary, problem, algorithm, seed, budget):
    pr = PROBLEMS[problem]
    values, params = [], []
    suggest_s = eval_s = 0.0
    ended = None
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as d:
        exp = os.path.join(d, "experiment.yaml")
        trials_path = os.path.join(d, "trials.json")
        with open(exp, "w") as f:
            f.write(experiment_yaml(problem, algorithm, seed, budget))
        trials = []
        for k in range(budget):
            with open(trials_path, "w") as f:
                json.dump({"trials": trials}, f)
            t0 = time.perf_counter()
            a = osprey_suggest(binary, exp, trials_path)
            suggest_s += time.perf_counter() - t0
            if a is None:
                ended = k
                break
            x = typed(problem, a)
            t0 = time.perf_counter()
            v = pr["f"](x)
            eval_s += time.perf_counter() - t0
            values.append(v)
            params.append(a)
            trials.append(
                {
                    "name": f"t{k + 1:04}",
                    "parameterAssignments": [{"name": n, "value": s} for n, s in a.items()],
                    "state": "Succeeded",
                    "metrics": [{"name": "objective", "value": v}],
                }
            )
    return values, params, suggest_s, eval_s, ended


# --- optuna ---------------------------------------------------------------------------------


def run_optuna(problem, sampler_name, seed, budget):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pr = PROBLEMS[problem]
    sampler = {
        "random": optuna.samplers.RandomSampler,
        "tpe": optuna.samplers.TPESampler,
    }[sampler_name](seed=seed)
    study = optuna.create_study(direction="maximize" if pr["maximize"] else "minimize", sampler=sampler)
    values, params = [], []
    eval_s = 0.0

    def objective(trial):
        nonlocal eval_s
        x = {}
        for p in pr["space"]:
            if p["type"] == "int":
                x[p["name"]] = trial.suggest_int(p["name"], p["min"], p["max"], log=p["log"])
            else:
                x[p["name"]] = trial.suggest_float(p["name"], p["min"], p["max"], log=p["log"])
        t0 = time.perf_counter()
        v = pr["f"](x)
        eval_s += time.perf_counter() - t0
        values.append(v)
        params.append({k: str(v_) for k, v_ in x.items()})
        return v

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=budget)
    total = time.perf_counter() - t0
    return values, params, total - eval_s, eval_s, None


# --- Runs -----------------------------------------------------------------------------------


def one_run(task):
    problem, method, seed, budget, binary, hyperband = task
    if hyperband is not None:
        PROBLEMS["gbm"]["resource"] = hyperband
    t0 = time.perf_counter()
    kind, name = method.split(":", 1)
    try:
        if kind == "osprey":
            values, params, sug, ev, ended = run_osprey(binary, problem, name, seed, budget)
        else:
            values, params, sug, ev, ended = run_optuna(problem, name, seed, budget)
        error = None
    except Refused as e:
        values, params, sug, ev, ended, error = [], [], 0.0, 0.0, 0, f"refused: {e}"
    except Exception as e:  # noqa: BLE001 (recorded, reported)
        values, params, sug, ev, ended, error = [], [], 0.0, 0.0, 0, f"{type(e).__name__}: {e}"
    return {
        "problem": problem,
        "method": method,
        "seed": seed,
        "values": values,
        "params": params,
        "suggest_seconds": sug,
        "eval_seconds": ev,
        "wall_seconds": time.perf_counter() - t0,
        "ended_at": ended,
        "error": error,
    }


def warm_up(problems, samplers):
    """Each worker imports optuna and loads gbm's data before its first run, so that no run is
    charged with them."""
    if samplers:
        import optuna  # noqa: F401
    if "gbm" in problems:
        import gbm as g
        from sklearn.ensemble import GradientBoostingClassifier  # noqa: F401

        g._load()


def probe(binary, problem, algorithm):
    """None when the binary accepts the algorithm for the problem, else why not."""
    with tempfile.TemporaryDirectory(prefix="tune-bench-") as d:
        exp = os.path.join(d, "experiment.yaml")
        trials_path = os.path.join(d, "trials.json")
        with open(exp, "w") as f:
            f.write(experiment_yaml(problem, algorithm, 0, 2))
        with open(trials_path, "w") as f:
            json.dump({"trials": []}, f)
        try:
            osprey_suggest(binary, exp, trials_path)
        except Refused as e:
            return str(e)
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"
    return None


def best_prefix(values, b, maximize):
    head = values[:b]
    if not head:
        return None
    return max(head) if maximize else min(head)


def quantiles(xs):
    s = sorted(xs)

    def q(p):
        if len(s) == 1:
            return s[0]
        i = p * (len(s) - 1)
        lo = math.floor(i)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (i - lo)

    return q(0.25), q(0.5), q(0.75)


def fmt(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 1e-3 and abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.2e}"


def main():
    ap = argparse.ArgumentParser(
        description="Osprey's tuning algorithms against optuna's samplers (see the docstring).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    default_bin = "/work/bench-bin/osprey"
    if not os.path.exists(default_bin):
        default_bin = os.path.join(ROOT, "target", "release", "osprey")
    ap.add_argument("--osprey", default=default_bin)
    ap.add_argument("--algorithms", default="random,tpe,bayesianoptimization,hyperband")
    ap.add_argument("--optuna", default="random,tpe")
    ap.add_argument("--problems", default="branin,hartmann6,gbm")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budgets", default="25,50")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="tune-benchmark.md")
    ap.add_argument("--raw", default=None)
    ap.add_argument("--hyperband", default=None)
    a = ap.parse_args()

    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    problems = split(a.problems)
    for p in problems:
        if p not in PROBLEMS:
            ap.error(f"unknown problem {p!r} ({', '.join(PROBLEMS)})")
    budgets = sorted({int(b) for b in split(a.budgets)})
    budget = budgets[-1]
    algorithms = split(a.algorithms)
    samplers = split(a.optuna)
    for s in samplers:
        if s not in ("random", "tpe"):
            ap.error(f"unknown optuna sampler {s!r} (random, tpe)")
    if algorithms and not os.access(a.osprey, os.X_OK):
        ap.error(f"no osprey binary at {a.osprey} (--osprey)")
    hyperband = None
    if a.hyperband:
        hyperband = dict(kv.split("=", 1) for kv in split(a.hyperband))
        PROBLEMS["gbm"]["resource"] = hyperband
    raw_path = a.raw or (os.path.splitext(a.out)[0] + ".json")

    notes = []
    methods = {}  # problem -> [method]
    for p in problems:
        ms = []
        for alg in algorithms:
            if alg == "hyperband" and PROBLEMS[p]["resource"] is None:
                continue  # n/a, said in the table
            why = probe(a.osprey, p, alg)
            if why:
                note = f"osprey {alg} skipped on {p}: {why.splitlines()[0]}"
                print(note, file=sys.stderr)
                notes.append(note)
                continue
            ms.append(f"osprey:{alg}")
        ms += [f"optuna:{s}" for s in samplers]
        methods[p] = ms

    tasks = [
        (p, m, seed, budget, a.osprey, hyperband) for seed in range(a.seeds) for p in problems for m in methods[p]
    ]
    print(
        f"{len(tasks)} runs of {budget} trials ({a.seeds} seeds; {', '.join(problems)}), {a.jobs} at a time",
        file=sys.stderr,
    )
    start = time.time()
    results = []
    with Pool(a.jobs, initializer=warm_up, initargs=(problems, samplers)) as pool:
        for i, r in enumerate(pool.imap_unordered(one_run, tasks), 1):
            results.append(r)
            if r["error"]:
                print(f"  {r['problem']} {r['method']} seed {r['seed']}: {r['error']}", file=sys.stderr)
            if i % max(1, len(tasks) // 20) == 0 or i == len(tasks):
                print(f"  {i}/{len(tasks)} runs done, {time.time() - start:.0f} s", file=sys.stderr)
    elapsed = time.time() - start

    # The optimum per problem: known, or the best found by any method in this run.
    optimum = {}
    for p in problems:
        if PROBLEMS[p]["optimum"] is not None:
            optimum[p] = PROBLEMS[p]["optimum"]
        else:
            found = [v for r in results if r["problem"] == p for v in r["values"]]
            optimum[p] = (max(found) if PROBLEMS[p]["maximize"] else min(found)) if found else None

    out = []
    out.append(f"## Tuning benchmark: {a.seeds} seeds, budgets {', '.join(map(str, budgets))} trials\n")
    out.append(
        "Median regret [interquartile range] over seeds; regret = |best value in the first b trials - optimum|. "
        "Time: median wall seconds per run of "
        f"{budget} trials (of which suggesting: the osprey tune suggest calls, or optuna's own time).\n"
    )
    for p in problems:
        if PROBLEMS[p]["optimum"] is not None:
            out.append(f"- {p}: known optimum {PROBLEMS[p]['optimum']}")
        else:
            out.append(
                f"- {p}: optimum unknown; regret against the best accuracy found by any method in this run "
                f"({fmt(optimum[p])})"
            )
    out.append("")
    header = "| problem | method | " + " | ".join(f"regret @{b}" for b in budgets) + " | s/run | suggest s/run | runs |"
    out.append(header)
    out.append("|" + "---|" * (header.count("|") - 1))
    for p in problems:
        rows = list(methods[p])
        if "hyperband" in algorithms and PROBLEMS[p]["resource"] is None:
            rows.append("osprey:hyperband")
        for m in rows:
            rs = [r for r in results if r["problem"] == p and r["method"] == m and not r["error"]]
            if m == "osprey:hyperband" and PROBLEMS[p]["resource"] is None:
                cells = ["n/a (no fidelity)"] * len(budgets) + ["-", "-", "0"]
            elif not rs:
                cells = ["-"] * len(budgets) + ["-", "-", "0"]
            else:
                cells = []
                for b in budgets:
                    regrets = []
                    for r in rs:
                        best = best_prefix(r["values"], b, PROBLEMS[p]["maximize"])
                        if best is not None and optimum[p] is not None:
                            regrets.append(abs(best - optimum[p]))
                    if regrets:
                        q1, med, q3 = quantiles(regrets)
                        cells.append(f"{fmt(med)} [{fmt(q1)}, {fmt(q3)}]")
                    else:
                        cells.append("-")
                cells.append(fmt(quantiles([r["wall_seconds"] for r in rs])[1]))
                cells.append(fmt(quantiles([r["suggest_seconds"] for r in rs])[1]))
                short = [r for r in rs if r["ended_at"] is not None]
                cells.append(f"{len(rs)}" + (f" ({len(short)} ended early)" if short else ""))
            out.append(f"| {p} | {m} | " + " | ".join(cells) + " |")
    out.append("")
    errors = [r for r in results if r["error"]]
    out.append(
        f"{len(results)} runs in {elapsed:.0f} s wall with {a.jobs} job(s); "
        f"CPU in the runs: {sum(r['wall_seconds'] for r in results):.0f} s."
    )
    for n in notes:
        out.append(f"- {n}")
    if errors:
        out.append(f"- {len(errors)} runs failed (see the raw results' `error`).")
    text = "\n".join(out) + "\n"
    print(text)
    with open(a.out, "w") as f:
        f.write(text)
    meta = {
        "osprey": a.osprey,
        "algorithms": algorithms,
        "optuna": samplers,
        "problems": problems,
        "seeds": a.seeds,
        "budgets": budgets,
        "jobs": a.jobs,
        "hyperband_settings": PROBLEMS["gbm"]["resource"],
        "optimum": optimum,
        "notes": notes,
        "elapsed_seconds": elapsed,
    }
    try:
        import optuna

        meta["optuna_version"] = optuna.__version__
    except ImportError:
        pass
    with open(raw_path, "w") as f:
        json.dump({"meta": meta, "runs": results}, f)
    print(f"table: {a.out}; raw results: {raw_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
