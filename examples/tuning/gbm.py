"""A real model to tune: scikit-learn's GradientBoostingClassifier on the breast cancer data set
that scikit-learn ships (569 samples; its 10 "mean" features, which keeps one evaluation cheap),
scored by 5-fold stratified cross-validated accuracy, printed as `accuracy=<value>` (Katib's
StdOut metrics format). Parameters as `--name=value` flags. Deterministic: the folds and the
model are seeded, so the same parameters always give the same accuracy.

`evaluate()` is also what scripts/tune_benchmark.py calls in-process.

    python3 examples/tuning/gbm.py --n_estimators=20 --learning_rate=0.3 --max_depth=2 --subsample=0.8
"""

import argparse
import time

FOLDS = 5
SEED = 0

_data = None


def _load():
    global _data
    if _data is None:
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import StratifiedKFold

        x, y = load_breast_cancer(return_X_y=True)
        x = x[:, :10]  # the "mean ..." features
        folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(x, y))
        _data = (x, y, folds)
    return _data


def evaluate(n_estimators, learning_rate, max_depth, subsample):
    """Mean accuracy over the folds, and each fold's."""
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, folds = _load()
    scores = []
    for train, test in folds:
        model = GradientBoostingClassifier(
            n_estimators=int(n_estimators),
            learning_rate=float(learning_rate),
            max_depth=int(max_depth),
            subsample=float(subsample),
            random_state=SEED,
        )
        model.fit(x[train], y[train])
        scores.append(float((model.predict(x[test]) == y[test]).mean()))
    return sum(scores) / len(scores), scores


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n_estimators", type=int, default=20)
    p.add_argument("--learning_rate", type=float, default=0.1)
    p.add_argument("--max_depth", type=int, default=2)
    p.add_argument("--subsample", type=float, default=1.0)
    a = p.parse_args()
    _load()
    from sklearn.ensemble import GradientBoostingClassifier  # noqa: F401 (imported before timing)

    start = time.perf_counter()
    accuracy, scores = evaluate(a.n_estimators, a.learning_rate, a.max_depth, a.subsample)
    for k, s in enumerate(scores):
        print(f"fold {k}: fold_accuracy={s:.6f}")
    print(f"fit_seconds={time.perf_counter() - start:.3f}")
    print(f"accuracy={accuracy:.6f}")


if __name__ == "__main__":
    main()
