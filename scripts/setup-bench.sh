#!/usr/bin/env bash
# The environment for scripts/tune_benchmark.py (.venv-bench): optuna 5.0 (its RandomSampler and
# TPESampler are the reference the tuning algorithms are measured against), numpy and
# scikit-learn (the GBM problem). Not used by CI or the tests; run it by hand before a benchmark.
# Skipped when every pin is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BENCH_VENV_PACKAGES=(optuna==5.0.0 numpy==2.4.6 scikit-learn==1.9.1)
if ! .venv-bench/bin/python - "${BENCH_VENV_PACKAGES[@]}" 2>/dev/null <<'PY'
import importlib.metadata as m, sys
sys.exit(any(m.version(name) != version for name, version in (a.split("==") for a in sys.argv[1:])))
PY
then
  if [ ! -x .venv-bench/bin/python ]; then
    "$PYTHON" -m venv .venv-bench
  fi
  .venv-bench/bin/pip install -q --disable-pip-version-check "${BENCH_VENV_PACKAGES[@]}"
fi
echo "setup-bench: ${BENCH_VENV_PACKAGES[*]} in .venv-bench"
