#!/usr/bin/env bash
# Installs what Osprey needs beyond the Rust toolchain into a project-local virtual environment
# (.venv): the ONNX Runtime shared library (from the onnxruntime wheel) and the test clients.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1)
echo "setup: ONNX Runtime library at ${lib:-<missing>}"
