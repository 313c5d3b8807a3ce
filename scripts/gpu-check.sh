#!/usr/bin/env bash
# The GPU checks in one go: the GPU tests (the MLP on ONNX Runtime's CUDA provider equals the
# CPU, MiniLM's embeddings on CUDA equal the CPU's, a missing GPU index makes a model
# UNAVAILABLE with the reason, GPU series in /metrics) and the GPU benchmark
# (scripts/bench_gpu.py). On a machine without a GPU every one of these tests skips with its
# reason, so this script refuses to run there instead of reporting skips as a pass.
#
#   scripts/gpu-check.sh --pack   (on the build machine) builds the `cuda` release binary, the
#                                 benchmark's example and the GPU test binaries into .gpu/, for a
#                                 GPU machine without a Rust toolchain; needs
#                                 `scripts/setup-cuda.sh --link` first.
#   scripts/gpu-check.sh          (on the GPU machine) runs them: from .gpu/ when packed, else
#                                 it builds them with cargo. Logs go to $OUT (or .gpu/out).
#
# Libraries it looks for on the GPU machine: the driver's libcuda.so.1 (system); CUDA 13's
# cuBLAS/cuRAND/NVRTC/runtime from .cuda/ (setup-cuda.sh --link) or any Python's nvidia/cu13
# wheels; ONNX Runtime with the CUDA provider from ORT_DYLIB_PATH or .cuda/ort (pip install
# --target .cuda/ort onnxruntime-gpu[cuda,cudnn]==1.31.1). Without that last one the ORT
# comparison skips with its reason and the MLP's GPU figures say "error".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TESTS=("osprey-runtimes:gpu" "osprey-runtimes:candle_bert" "osprey-server:gpu")

if [ "${1:-}" = "--pack" ]; then
  set -e
  source scripts/cuda-env.sh
  rm -rf .gpu && mkdir -p .gpu/tests
  cargo build --release --features osprey-server/cuda -p osprey-server --bin osprey
  cargo build --release --features osprey-runtimes/cuda -p osprey-runtimes --example throughput
  cp target/release/osprey target/release/examples/throughput .gpu/
  for t in "${TESTS[@]}"; do
    pkg=${t%%:*} name=${t##*:}
    exe=$(cargo test --release --features "$pkg/cuda" -p "$pkg" --test "$name" --no-run \
      --message-format=json 2>/dev/null | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)
    cp "$exe" ".gpu/tests/$pkg-$name"
  done
  strip .gpu/osprey .gpu/throughput .gpu/tests/* 2>/dev/null || true
  du -sh .gpu
  exit 0
fi

out=${OUT:-$root/.gpu/out}
mkdir -p "$out"
if ! nvidia-smi -L >"$out/gpus.txt" 2>&1; then
  echo "gpu-check: no GPU here (nvidia-smi: $(head -n1 "$out/gpus.txt")); nothing to check" >&2
  exit 2
fi
cat "$out/gpus.txt"

# CUDA 13 libraries: ours, else the wheels of any Python on the machine.
libs="$root/.cuda/nvidia/cu13/lib"
for py in python3 /opt/*/.venv/bin/python3; do
  command -v "$py" >/dev/null 2>&1 || continue
  d=$("$py" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))' 2>/dev/null) || continue
  [ -d "$d" ] && libs="$libs:$d"
  for sub in cudnn cublas curand cuda_nvrtc cuda_runtime; do
    d2=$("$py" -c "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], '$sub', 'lib'))" 2>/dev/null) || continue
    [ -d "$d2" ] && libs="$libs:$d2"
  done
done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ort=$(ls "$root"/.cuda/ort/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1)
  [ -n "$ort" ] && export ORT_DYLIB_PATH="$ort" && export LD_LIBRARY_PATH="$(dirname "$ort"):$LD_LIBRARY_PATH"
fi
echo "gpu-check: ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-<unset: the CPU library, the ORT GPU test skips>}"

if [ -d .gpu/tests ]; then
  bin=.gpu
  tests=(.gpu/tests/*)
else
  source scripts/cuda-env.sh
  cargo build --release --features osprey-server/cuda -p osprey-server --bin osprey || exit 1
  cargo build --release --features osprey-runtimes/cuda -p osprey-runtimes --example throughput || exit 1
  bin=target/release
  cp target/release/examples/throughput target/release/throughput
  tests=()
  for t in "${TESTS[@]}"; do
    pkg=${t%%:*} name=${t##*:}
    tests+=("$(cargo test --release --features "$pkg/cuda" -p "$pkg" --test "$name" --no-run \
      --message-format=json 2>/dev/null | grep -o '"executable":"[^"]*"' | tail -n1 | cut -d'"' -f4)")
  done
fi

status=0
for t in "${tests[@]}"; do
  name=$(basename "$t")
  # Integration tests find the models and the binary relative to their crate.
  case "$name" in osprey-server*|gpu-*) dir=server ;; *) dir=runtimes ;; esac
  echo "== $name"
  (cd "$dir" && OSPREY_BIN="$root/$bin/osprey" "$root/$t" --nocapture --test-threads 1) \
    >"$out/test-$name.log" 2>&1 || status=1
  grep -E "^test |skipping|no GPU|test result" "$out/test-$name.log"
done

echo "== benchmark"
python3 scripts/bench_gpu.py --osprey "$bin/osprey" --throughput "$bin/throughput" \
  --json "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.txt"
exit $status
