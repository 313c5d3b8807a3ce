#!/usr/bin/env bash
# Memory soak: one Osprey server (default flags) serving the MLP with dynamic batching (`mlp`) and
# without (`mlp_nobatch`), driven for DURATION seconds by four `osprey loadtest` clients at once:
# REST (binary) and gRPC against each model. The server's VmRSS is sampled every SAMPLE seconds;
# the verdict compares the RSS at DURATION (the clients run 30 s longer, so that the last sample
# is taken under load, not while connections close) with the RSS after WARMUP seconds (pass:
# within 2%), and shows the RSS once the load has stopped.
#
#   scripts/soak.sh                         # 10 minutes
#   DURATION=120 WARMUP=30 scripts/soak.sh  # a short run
#
# Environment: DURATION (600), WARMUP (60), SAMPLE (10), CONCURRENCY per client (8),
# SKIP_BUILD=1 (use target/release/osprey as it is), PORT_BASE (19100).
# Output: .osprey/soak/rss.csv (seconds,rss_kib,cpu_seconds), the loadtest logs, and a summary.
# Loopback only; every process is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-600}
WARMUP=${WARMUP:-60}
SAMPLE=${SAMPLE:-10}
CONCURRENCY=${CONCURRENCY:-8}
PORT_BASE=${PORT_BASE:-19100}
HTTP=$PORT_BASE GRPC=$((PORT_BASE + 1)) METRICS=$((PORT_BASE + 2))
WORK=$ROOT/.osprey/soak
rm -rf "$WORK"
mkdir -p "$WORK/repo"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p osprey-server --bin osprey
fi
OSPREY=$ROOT/target/release/osprey

# The repository: the MLP twice, batching on and off, configured as a Triton user would.
for name in mlp mlp_nobatch; do
  mkdir -p "$WORK/repo/$name/1"
  cp models/mlp/1/model.onnx "$WORK/repo/$name/1/model.onnx"
  batching=""
  [ "$name" = mlp ] && batching="dynamic_batching { }"
  sed -e "s/@NAME@/$name/" -e "s/@BATCHING@/$batching/" scripts/peers/triton_user_mlp.pbtxt \
    >"$WORK/repo/$name/config.pbtxt"
done

timeout -k 5 $((DURATION + 120)) "$OSPREY" serve --model-repository "$WORK/repo" --address 127.0.0.1 \
  --http-port "$HTTP" --grpc-port "$GRPC" --metrics-port "$METRICS" --log-level warn \
  >"$WORK/server.log" 2>&1 &
SERVER=$!   # the `timeout` wrapper; the server is its child
CLIENTS=()
cleanup() {
  for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$SERVER" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 240); do
  curl -sf -m 1 -o /dev/null "http://127.0.0.1:$HTTP/v2/health/ready" && break
  sleep 0.5
done
curl -sf -m 1 -o /dev/null "http://127.0.0.1:$HTTP/v2/health/ready" || { echo "server not ready" >&2; cat "$WORK/server.log" >&2; exit 1; }
PID=$(pgrep -P "$SERVER" | head -n1)
[ -n "$PID" ] || { echo "server process not found under $SERVER" >&2; exit 1; }

for model in mlp mlp_nobatch; do
  for transport in rest-binary grpc; do
    port=$HTTP
    [ "$transport" = grpc ] && port=$GRPC
    timeout -k 5 $((DURATION + 90)) "$OSPREY" loadtest --url "127.0.0.1:$port" --stats-url "127.0.0.1:$HTTP" \
      --metrics-url "127.0.0.1:$METRICS" --transport "$transport" -m "$model" --shape input:64 \
      --concurrency "$CONCURRENCY" --warmup 0 --duration "$((DURATION + 30))" --quiet \
      >"$WORK/load-$model-$transport.log" 2>&1 &
    CLIENTS+=($!)
  done
done

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
cpu_s() { awk '{ print ($14 + $15) / 100 }' "/proc/$PID/stat"; }
echo "seconds,rss_kib,cpu_seconds" >"$WORK/rss.csv"
start=$(date +%s)
while :; do
  now=$(( $(date +%s) - start ))
  kill -0 "$PID" 2>/dev/null || { echo "server exited" >&2; exit 1; }
  echo "$now,$(rss_kib),$(cpu_s)" >>"$WORK/rss.csv"
  [ "$now" -ge "$DURATION" ] && break
  sleep "$SAMPLE"
done
for p in "${CLIENTS[@]}"; do wait "$p" || true; done
CLIENTS=()
after_load=$(rss_kib)

echo
echo "=== clients"
for f in "$WORK"/load-*.log; do echo "--- $(basename "$f" .log)"; tail -n 3 "$f"; done
python3 - "$WORK/rss.csv" "$WARMUP" "$after_load" <<'PY'
import csv, sys
rows = [(int(r["seconds"]), int(r["rss_kib"]), float(r["cpu_seconds"])) for r in csv.DictReader(open(sys.argv[1]))]
warmup = int(sys.argv[2])
base = next((r for r in rows if r[0] >= warmup), rows[0])
end = rows[-1]
peak = max(r[1] for r in rows if r[0] >= warmup)
growth = (end[1] - base[1]) / base[1] * 100
print()
print("=== RSS (KiB)")
print(f"at {base[0]} s (after warm-up): {base[1]}")
print(f"peak after warm-up:          {peak}")
print(f"at {end[0]} s (end):          {end[1]}  ({growth:+.2f}% from after warm-up)")
print(f"after the load stopped:      {sys.argv[3]}")
print(f"server CPU: {end[2] - base[2]:.1f} s over {end[0] - base[0]} s")
print("verdict:", "PASS (within 2%)" if abs(growth) <= 2.0 else "FAIL (more than 2%)")
PY
