#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real server on port 0, real ONNX Runtime),
# then the conformance tests with the stock tritonclient package against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The controller's integration tests start a real kube-apiserver + etcd (v1.20, from Debian
# packages; built once, cached under ~/.cache/osprey/k8s) and use its kubectl.
bash scripts/k8s/build-apiserver.sh >/dev/null
# A one-shot build gains nothing from incremental state, which takes gigabytes of disk.
export CARGO_INCREMENTAL=0
# cargo test also builds target/debug/osprey (the integration tests run it), so the
# conformance tests reuse that binary: one profile, no second build.
cargo test --workspace --all-targets
# The scheduler's wake-up protocol, every interleaving up to two preemptions (loom).
LOOM_MAX_PREEMPTIONS=2 cargo test -p osprey-dispatch --features loom --release --test loom
OSPREY_BIN="$PWD/target/debug/osprey" .venv/bin/python -m pytest -q server/tests/conformance
# The data-parallel training script the training-job tests run (numpy, ranks over TCP).
.venv/bin/python -m pytest -q examples/training
# `osprey pipeline run` against kfp's own local runner (kfp.local) on the same compiled examples:
# pipeline outputs and every task's outputs equal (.venv-kfp has kfp, scikit-learn, skl2onnx).
OSPREY_BIN="$PWD/target/debug/osprey" .venv-kfp/bin/python -m pytest -q -rs examples/pipelines
# The test node agent (scripts/k8s/node_agent: pods as local processes in per-pod network
# namespaces) against a real kube-apiserver, and the end-to-end tests of InferenceServices and
# training jobs on it. Needs root and iproute2 (skipped otherwise).
.venv/bin/python -m pytest -q scripts/k8s/tests
# The `cuda` build compiles and is clippy-clean, so it cannot rot: nvcc (CUDA 13.4, from PyPI
# wheels into .cuda/) compiles every candle kernel for sm_90. No GPU or driver needed; nothing
# is linked (see the README's GPU serving section for a linked build).
bash scripts/setup-cuda.sh
(source scripts/cuda-env.sh && cargo clippy --workspace --all-targets --features osprey-runtimes/cuda -- -D warnings)
