#!/usr/bin/env bash
# Installs NVIDIA's perf_analyzer (from the tritonclient 2.51.0 wheel, the last one that runs on
# glibc 2.36) into .osprey/perf_analyzer and runs it with the arguments given, e.g.
#   scripts/perf_analyzer.sh -m mlp -u 127.0.0.1:8001 -i grpc --shape input:64 -b 1 \
#     --concurrency-range 1:1 --measurement-interval 4000 --stability-percentage 1000 --max-trials 3
# Needs: Debian's libb64-0d (installed with apt-get when missing) and libcudart.so.12 from the
# nvidia-cuda-runtime-cu12 wheel (it loads without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.osprey/perf_analyzer
if [ ! -x "$dir/bin/perf_analyzer" ]; then
  mkdir -p "$dir/wheel"
  .venv/bin/pip download -q --no-deps -d "$dir/wheel" tritonclient==2.51.0
  .venv/bin/python - "$dir" <<'PY'
import glob, os, sys, zipfile
d = sys.argv[1]
whl = glob.glob(os.path.join(d, "wheel", "tritonclient-2.51.0-*manylinux*x86_64.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = "tritonclient-2.51.0.data/data/bin/perf_analyzer"
    os.makedirs(os.path.join(d, "bin"), exist_ok=True)
    with z.open(name) as src, open(os.path.join(d, "bin", "perf_analyzer"), "wb") as dst:
        dst.write(src.read())
os.chmod(os.path.join(d, "bin", "perf_analyzer"), 0o755)
PY
  .venv/bin/pip install -q --disable-pip-version-check --target "$dir/cuda" nvidia-cuda-runtime-cu12
fi
if ! ldconfig -p | grep -q libb64.so.0d; then
  apt-get install -y -q libb64-0d >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libb64-0d >/dev/null; }
fi
cudart=$(dirname "$(find "$dir/cuda" -name 'libcudart.so.12*' | head -n1)")
LD_LIBRARY_PATH="$cudart:${LD_LIBRARY_PATH:-}" exec "$dir/bin/perf_analyzer" "$@"
