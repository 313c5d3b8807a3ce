#!/usr/bin/env bash
# One command on a fresh machine: install what is needed, build, and serve models/ on
# ports 8000 (REST), 8001 (gRPC) and 8002 (metrics). Extra arguments go to `osprey serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release -p osprey-server --bin osprey -- serve --model-repository models "$@"
