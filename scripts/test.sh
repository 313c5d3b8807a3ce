#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real server on port 0, real ONNX Runtime),
# then the conformance tests with the stock tritonclient package against the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo test --workspace --all-targets
cargo build -p osprey-server --bin osprey
OSPREY_BIN="$PWD/target/debug/osprey" .venv/bin/python -m pytest -q server/tests/conformance
