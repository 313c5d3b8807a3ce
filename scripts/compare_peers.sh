#!/usr/bin/env bash
# Benchmarks Osprey side by side with Triton 2.51 (python backend), KServe 0.21 and MLServer 1.7.1
# serving the same ONNX model (models/mlp) and driven by the same client. See scripts/peers/README.md.
#
#   CLIENT=perf_analyzer (default): NVIDIA's perf_analyzer (scripts/perf_analyzer.sh) drives Osprey
#     and Triton over gRPC and REST (binary tensors), batch-1 requests; Osprey serves the model from
#     a repository written as a Triton user writes it (platform onnxruntime_onnx, dynamic_batching,
#     no parameters) with its default flags; for every run the server's CPU time per inference (its
#     whole process tree, from /proc) and average batch size (from its statistics) are reported too.
#     KServe and MLServer are skipped: perf_analyzer needs /v2/models/{m}/config, which they lack.
#   CLIENT=loadtest: `osprey loadtest` against all four (REST JSON, REST binary, gRPC) and one
#     report (`osprey report`).
#
#   SKIP_BUILD=1 scripts/compare_peers.sh                          # perf_analyzer, osprey + triton
#   SKIP_BUILD=1 DURATION=2000 CONCURRENCY=1,8 scripts/compare_peers.sh
#   SKIP_BUILD=1 CLIENT=loadtest DURATION=10 PEERS="osprey triton" scripts/compare_peers.sh
#
# Environment (all optional):
#   CLIENT        perf_analyzer | loadtest           default perf_analyzer
#   PEERS         targets, in order                  default "osprey triton kserve mlserver"
#   DURATION      perf_analyzer: --measurement-interval in ms, default 5000 (each call runs at
#                 most 3 such trials; a value under 100 is taken as seconds);
#                 loadtest: measured seconds per step, default 5
#   WARMUP        loadtest only: unmeasured seconds per step   default 1
#   CONCURRENCY   closed-loop levels                 default 1,8,64
#   PA_TIMEOUT    perf_analyzer only: seconds per perf_analyzer call, default 4 intervals + 30,
#                 at least 120
#   PA_EXTRA      perf_analyzer only: extra flags for every call, e.g. "--async --max-threads 2"
#                 (what makes REST at concurrency 64 against Osprey finish; see the README)
#   PA_WINDOW_REQUESTS perf_analyzer only: requests per measurement window (count windows),
#                 default 4000; 0 = time windows of DURATION ms. perf_analyzer 2.51's window
#                 summary is quadratic in the requests a window holds: with time windows it
#                 never finishes at ~8k requests/s or more (see scripts/peers/README.md)
#   SKIP_BUILD=1  use target/release/osprey as it is (no cargo build)
#   READY_TIMEOUT seconds to wait for a server       default 120
#   INSTALL_TIMEOUT seconds per pip install          default 1800
#   PEER_ORT_THREADS ONNX Runtime intra-op threads in the peers' model code; 0 = not set (ONNX
#                 Runtime decides, one per core). Default 0 with perf_analyzer (defaults on both
#                 sides: Osprey's generated config sets no intra_op_thread_count either), 1 with
#                 loadtest (as Osprey's models/mlp/config.pbtxt)
# Servers run one at a time on loopback; every wait and every load run is bounded by `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CLIENT=${CLIENT:-perf_analyzer}
PEERS=${PEERS:-"osprey triton kserve mlserver"}
WARMUP=${WARMUP:-1}
CONCURRENCY=${CONCURRENCY:-1,8,64}
READY_TIMEOUT=${READY_TIMEOUT:-120}
INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-1800}
REQUEST_TIMEOUT=${REQUEST_TIMEOUT:-10}
PYTHON=${PYTHON:-python3}
case $CLIENT in
  perf_analyzer)
    DURATION=${DURATION:-5000}
    if [ "$DURATION" -lt 100 ]; then
      echo "DURATION=$DURATION is in milliseconds with CLIENT=perf_analyzer: taking it as ${DURATION}000 ms"
      DURATION=${DURATION}000
    fi
    PA_TIMEOUT=${PA_TIMEOUT:-$(( 4 * DURATION / 1000 + 30 > 120 ? 4 * DURATION / 1000 + 30 : 120 ))}
    export PEER_ORT_THREADS=${PEER_ORT_THREADS:-0} ;;
  loadtest)
    DURATION=${DURATION:-5}
    export PEER_ORT_THREADS=${PEER_ORT_THREADS:-1} ;;
  *) echo "CLIENT must be perf_analyzer or loadtest, not '$CLIENT'" >&2; exit 2 ;;
esac

MODEL=mlp
ONNX=$ROOT/models/mlp/1/model.onnx
TEMPLATES=$ROOT/scripts/peers
WORK=$ROOT/.osprey/peers
RESULTS=$WORK/results
mkdir -p "$RESULTS"

# Ports: REST / gRPC / metrics per target.
declare -A HTTP_PORT=([osprey]=19000 [triton]=19010 [kserve]=19020 [mlserver]=19030)
declare -A GRPC_PORT=([osprey]=19001 [triton]=19011 [kserve]=19021 [mlserver]=19031)
declare -A METRICS_PORT=([osprey]=19002 [triton]=19012 [kserve]=0 [mlserver]=19032)
# Transports per target (MLServer has no binary tensor extension over REST).
declare -A TRANSPORTS=(
  [osprey]="rest-json rest-binary grpc"
  [triton]="rest-json rest-binary grpc"
  [kserve]="rest-json rest-binary grpc"
  [mlserver]="rest-json grpc"
)
# Pinned packages per peer venv.
declare -A PACKAGES=(
  [triton]="nvidia-pytriton==0.7.0 onnxruntime==1.31.1 numpy"
  [kserve]="kserve==0.21.0 onnxruntime==1.31.1"
  [mlserver]="mlserver==1.7.1 uvloop==0.21.0 onnxruntime==1.31.1"
)

T0=$(date +%s)
PHASES=()
phase_start() { PHASE_NAME=$1; PHASE_T=$(date +%s); echo; echo "=== $1"; }
phase_end() {
  local s=$(( $(date +%s) - PHASE_T ))
  PHASES+=("$(printf '%-28s %5ss' "$PHASE_NAME" "$s")")
  echo "--- $PHASE_NAME: ${s}s"
}

# ---------------------------------------------------------------------------- server lifecycle
SERVER_PID=""
# group_alive PGID: whether a process of the group is still running (zombies do not count).
group_alive() {
  ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid=$SERVER_PID
  SERVER_PID=""
  # Each server runs in its own session/process group (setsid): signal the whole group, so that
  # Triton's python stubs and MLServer's workers go too.
  kill -TERM -- "-$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 30); do
    group_alive "$pid" || break
    sleep 0.5
  done
  if group_alive "$pid"; then
    echo "server $pid still running after 15 s: SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
# bounded SECONDS CMD...: runs CMD under `timeout` in the background and waits for it, so that an
# interrupt reaches the trap at once instead of after CMD (timeout puts CMD in its own process group,
# out of reach of the terminal's Ctrl-C).
CHILD_PID=""
bounded() {
  local s=$1
  shift
  timeout -k 5 "$s" "$@" &
  CHILD_PID=$!
  local rc=0
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}
cleanup() {
  local rc=$?
  [ -z "$CHILD_PID" ] || kill -TERM "$CHILD_PID" 2>/dev/null || true
  stop_server
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME LOG CMD...: starts CMD in its own process group.
start_server() {
  local name=$1 log=$2
  shift 2
  local p
  for p in "${HTTP_PORT[$name]}" "${GRPC_PORT[$name]}"; do
    if port_open "$p"; then
      echo "port $p is already in use (a server left over from an earlier run?): not starting $name" >&2
      return 1
    fi
  done
  setsid "$@" >"$log" 2>&1 </dev/null &
  SERVER_PID=$!
}

# wait_ready NAME: bounded wait for REST model readiness and the gRPC port.
wait_ready() {
  local name=$1 deadline=$(( $(date +%s) + READY_TIMEOUT ))
  local url="http://127.0.0.1:${HTTP_PORT[$name]}/v2/models/$MODEL/ready"
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$name exited before it was ready" >&2
      return 1
    fi
    if grep -qE "error while loading shared libraries|failed to load" "$WORK/$name/server.log"; then
      echo "$name failed to load the model" >&2
      return 1
    fi
    if curl -sf -m 2 -o /dev/null "$url" && port_open "${GRPC_PORT[$name]}"; then
      return 0
    fi
    sleep 0.5
  done
  echo "$name not ready after ${READY_TIMEOUT}s" >&2
  return 1
}

# ---------------------------------------------------------------------------- install
install_peer() {
  local name=$1 dir=$WORK/$1 venv=$WORK/$1/venv
  local want="${PACKAGES[$name]}"
  if [ -f "$venv/.osprey-installed" ] && [ "$(cat "$venv/.osprey-installed")" = "$want" ]; then
    echo "$name: already installed ($want)"
    return 0
  fi
  echo "$name: installing $want into $venv"
  mkdir -p "$dir"
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  # shellcheck disable=SC2086
  bounded "$INSTALL_TIMEOUT" "$venv/bin/pip" install -q --disable-pip-version-check $want \
    >"$dir/install.log" 2>&1 || { echo "$name: pip install failed, see $dir/install.log" >&2; tail -n 20 "$dir/install.log" >&2; return 1; }
  echo "$want" >"$venv/.osprey-installed"
}

# ---------------------------------------------------------------------------- per-peer setup
# Osprey's repository for CLIENT=perf_analyzer, written as a Triton user writes it for the native
# onnxruntime backend: the same model.onnx, no Osprey-specific parameters (no intra_op_thread_count).
prepare_osprey_repo() {
  local repo=$WORK/osprey/repo
  rm -rf "$repo"
  mkdir -p "$repo/$MODEL/1"
  cp "$ONNX" "$repo/$MODEL/1/model.onnx"
  sed -e "s/@NAME@/$MODEL/" -e "s/@BATCHING@/dynamic_batching { }/" \
    "$TEMPLATES/triton_user_mlp.pbtxt" >"$repo/$MODEL/config.pbtxt"
}

prepare_triton() {
  local dir=$WORK/triton venv=$WORK/triton/venv
  local pt
  pt=$(echo "$venv"/lib/python3*/site-packages/pytriton/tritonserver)
  rm -rf "$dir/models" "$dir/backends"
  mkdir -p "$dir/models/$MODEL/1" "$dir/backends/python" "$dir/cache"
  cp "$TEMPLATES/triton_config.pbtxt" "$dir/models/$MODEL/config.pbtxt"
  cp "$TEMPLATES/triton_model.py" "$dir/models/$MODEL/1/model.py"
  cp "$ONNX" "$dir/models/$MODEL/1/model.onnx"
  # A backend directory of our own (the wheel's lacks the stub): backend library, utils, stub.
  cp "$pt/backends/python/libtriton_python.so" "$pt/backends/python/triton_python_backend_utils.py" \
    "$dir/backends/python/"
  cp "$pt/python_backend_stubs/3.11/triton_python_backend_stub" "$dir/backends/python/"
  TRITON_BIN=$pt/bin/tritonserver
  # The stub links libpython3.11.so.1.0 and the wheel's bundled libcudart (loads without a GPU).
  TRITON_LIBS=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
  TRITON_LIBS=$TRITON_LIBS:$(echo "$venv"/lib/python3*/site-packages/nvidia_pytriton.libs)
}

prepare_kserve() {
  local dir=$WORK/kserve
  mkdir -p "$dir"
  cp "$TEMPLATES/kserve_server.py" "$dir/kserve_server.py"
}

prepare_mlserver() {
  local dir=$WORK/mlserver
  rm -rf "$dir/repo"
  mkdir -p "$dir/repo/$MODEL"
  cp "$TEMPLATES/mlserver_model.py" "$dir/repo/$MODEL/mlserver_model.py"
  cp "$TEMPLATES/mlserver_model_settings.json" "$dir/repo/$MODEL/model-settings.json"
  cp "$ONNX" "$dir/repo/$MODEL/model.onnx"
  "$dir/venv/bin/python" - "$TEMPLATES/mlserver_settings.json" "$dir/repo/settings.json" \
    "${HTTP_PORT[mlserver]}" "${GRPC_PORT[mlserver]}" "${METRICS_PORT[mlserver]}" <<'PY'
import json, sys
src, dst, http, grpc, metrics = sys.argv[1:]
s = json.load(open(src))
s.update(host="127.0.0.1", http_port=int(http), grpc_port=int(grpc), metrics_port=int(metrics))
json.dump(s, open(dst, "w"), indent=2)
PY
}

launch() {
  local name=$1 log=$WORK/$1/server.log
  mkdir -p "$WORK/$name"
  case $name in
    osprey)
      if [ "$CLIENT" = perf_analyzer ]; then
        # Default flags (but loopback addresses and the ports), on the Triton user's repository.
        prepare_osprey_repo
        start_server osprey "$log" "$OSPREY" serve --model-repository "$WORK/osprey/repo" \
          --address 127.0.0.1 --http-port "${HTTP_PORT[osprey]}" --grpc-port "${GRPC_PORT[osprey]}" \
          --metrics-port "${METRICS_PORT[osprey]}"
      else
        start_server osprey "$log" "$OSPREY" serve --model-repository "$ROOT/models" --model "$MODEL" \
          --address 127.0.0.1 --http-port "${HTTP_PORT[osprey]}" --grpc-port "${GRPC_PORT[osprey]}" \
          --metrics-port "${METRICS_PORT[osprey]}"
      fi ;;
    triton)
      prepare_triton
      start_server triton "$log" env PATH="$WORK/triton/venv/bin:$PATH" \
        LD_LIBRARY_PATH="$TRITON_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$TRITON_BIN" --model-repository "$WORK/triton/models" \
        --backend-directory "$WORK/triton/backends" --cache-directory "$WORK/triton/cache" \
        --http-address 127.0.0.1 --http-port "${HTTP_PORT[triton]}" \
        --grpc-address 127.0.0.1 --grpc-port "${GRPC_PORT[triton]}" \
        --metrics-address 127.0.0.1 --metrics-port "${METRICS_PORT[triton]}" \
        --log-verbose 0 ;;
    kserve)
      prepare_kserve
      start_server kserve "$log" env PEER_MODEL_NAME="$MODEL" PEER_MODEL_PATH="$ONNX" \
        PEER_HTTP_PORT="${HTTP_PORT[kserve]}" PEER_GRPC_PORT="${GRPC_PORT[kserve]}" \
        "$WORK/kserve/venv/bin/python" "$WORK/kserve/kserve_server.py" ;;
    mlserver)
      prepare_mlserver
      # MLServer writes its metrics directory into the working directory: run it from its own.
      start_server mlserver "$log" bash -c 'cd "$1" && exec "$2" start .' _ \
        "$WORK/mlserver/repo" "$WORK/mlserver/venv/bin/mlserver" ;;
    *) echo "unknown target $name" >&2; return 1 ;;
  esac
}

# run_load NAME TRANSPORT: one bounded `osprey loadtest` run.
run_load() {
  local name=$1 transport=$2 port extra=()
  if [ "$transport" = grpc ]; then
    port=${GRPC_PORT[$name]}
    # Metadata and statistics over REST where the server has Triton's statistics extension.
    case $name in osprey|triton) extra=(--stats-url "127.0.0.1:${HTTP_PORT[$name]}") ;; esac
  else
    port=${HTTP_PORT[$name]}
  fi
  local steps
  steps=$(echo "$CONCURRENCY" | tr ',' '\n' | grep -c .)
  local bound=$(( steps * (WARMUP + DURATION + REQUEST_TIMEOUT) + 30 ))
  local out=$RESULTS/$name-$transport.json
  echo "--- $name $transport (bounded to ${bound}s)"
  if bounded "$bound" "$OSPREY" loadtest --url "127.0.0.1:$port" --transport "$transport" \
      -m "$MODEL" --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup "$WARMUP" \
      --timeout "$REQUEST_TIMEOUT" --shape input:64 --json "$out" --label "$name" --quiet \
      --max-error-rate 1 "${extra[@]}" \
      >"$RESULTS/$name-$transport.log" 2>&1; then
    cat "$RESULTS/$name-$transport.log"
    local errs
    errs=$("$PYTHON" -c '
import json, sys
bad = {}
for r in json.load(open(sys.argv[1])):
    for k, v in r.get("errors", {}).items():
        bad[k] = bad.get(k, 0) + v
print(", ".join(f"{k}={v}" for k, v in sorted(bad.items())))' "$out")
    [ -z "$errs" ] || FAILURES+=("$name $transport: failed requests: $errs")
  else
    local rc=$?
    echo "!!! $name $transport: loadtest failed (exit $rc):"
    tail -n 20 "$RESULTS/$name-$transport.log"
    FAILURES+=("$name $transport: loadtest exit $rc: $(tail -n 1 "$RESULTS/$name-$transport.log")")
    rm -f "$out"
  fi
}

# run_pa NAME TRANSPORT CONCURRENCY: one bounded perf_analyzer call between two samples of the
# server's CPU time (its whole session, from /proc) and statistics (scripts/pa_measure.py).
run_pa() {
  local name=$1 transport=$2 conc=$3 url
  if [ "$transport" = grpc ]; then url=127.0.0.1:${GRPC_PORT[$name]}; else url=127.0.0.1:${HTTP_PORT[$name]}; fi
  local base=$RESULTS/pa-$name-$transport-c$conc
  echo "--- $name $transport concurrency $conc (perf_analyzer bounded to ${PA_TIMEOUT}s)"
  local rc=0
  # pa_measure.py kills perf_analyzer at PA_TIMEOUT; the outer bound covers its statistics calls.
  bounded $(( PA_TIMEOUT + 60 )) "$PYTHON" "$ROOT/scripts/pa_measure.py" run --sid "$SERVER_PID" \
    --stats-url "127.0.0.1:${HTTP_PORT[$name]}" --model "$MODEL" --url "$url" --protocol "$transport" \
    --concurrency "$conc" --interval-ms "$DURATION" --timeout "$PA_TIMEOUT" --csv "$base.csv" \
    --target "$name" --out "$RESULTS/pa.jsonl" || rc=$?
  if [ "$rc" -ne 0 ]; then
    local why=""
    if [ "$rc" -eq 2 ]; then
      why=$(tail -n 1 "$RESULTS/pa.jsonl" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["error"])' 2>/dev/null || true)
    else
      why="pa_measure.py exit $rc"
    fi
    echo "!!! $name $transport c=$conc: ${why:-failed}; perf_analyzer's output: $base.log"
    FAILURES+=("$name $transport c=$conc: ${why:-failed}")
  fi
}

# ---------------------------------------------------------------------------- main
FAILURES=()
SKIPPED=()
if [ "$CLIENT" = perf_analyzer ]; then
  run_peers=""
  for name in $PEERS; do
    case $name in
      osprey|triton) run_peers+=" $name" ;;
      kserve|mlserver)
        why="$name: skipped with CLIENT=perf_analyzer: it has no /v2/models/{m}/config (Triton's model-configuration extension), which perf_analyzer reads first; CLIENT=loadtest measures it"
        echo "$why"
        SKIPPED+=("$why") ;;
      *) echo "unknown target $name" >&2; exit 2 ;;
    esac
  done
  PEERS=${run_peers# }
fi
OSPREY_SRC=$ROOT/target/release/osprey
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  phase_start "build osprey"
  bounded "${BUILD_TIMEOUT:-3600}" cargo build --release -p osprey-server --bin osprey
  phase_end
fi
[ -x "$OSPREY_SRC" ] || { echo "missing $OSPREY_SRC (build with cargo build --release -p osprey-server --bin osprey)" >&2; exit 1; }
# A private copy, so that a rebuild during the run does not swap the binary under it.
mkdir -p "$WORK/bin"
cp "$OSPREY_SRC" "$WORK/bin/osprey"
OSPREY=$WORK/bin/osprey

phase_start "install peers"
for name in $PEERS; do
  [ "$name" = osprey ] && continue
  install_peer "$name" || FAILURES+=("$name: install failed")
done
if [ "$CLIENT" = perf_analyzer ]; then
  # perf_analyzer from the tritonclient 2.51.0 wheel, into .osprey/perf_analyzer (once).
  bounded "$INSTALL_TIMEOUT" bash "$ROOT/scripts/perf_analyzer.sh" --version >"$WORK/perf_analyzer-install.log" 2>&1 || {
    echo "perf_analyzer install failed, see $WORK/perf_analyzer-install.log" >&2
    tail -n 20 "$WORK/perf_analyzer-install.log" >&2
    exit 1
  }
  echo "$(grep -m1 -i 'perf analyzer version' "$WORK/perf_analyzer-install.log" || echo 'perf_analyzer installed')"
fi
phase_end

rm -f "$RESULTS"/*.json "$RESULTS"/*.log "$RESULTS"/*.csv "$RESULTS"/*.jsonl
for name in $PEERS; do
  if [ "$name" != osprey ] && [ ! -f "$WORK/$name/venv/.osprey-installed" ]; then
    echo "skipping $name: not installed"
    continue
  fi
  phase_start "start $name"
  if ! launch "$name" || ! wait_ready "$name"; then
    echo "!!! $name did not start; last lines of $WORK/$name/server.log:"
    tail -n 20 "$WORK/$name/server.log" || true
    FAILURES+=("$name: did not start (see $WORK/$name/server.log)")
    stop_server
    phase_end
    continue
  fi
  phase_end
  phase_start "load $name"
  if [ "$CLIENT" = perf_analyzer ]; then
    # gRPC first: should a REST run leave the server stuck, the gRPC figures are already in.
    for transport in grpc http; do
      for conc in ${CONCURRENCY//,/ }; do
        run_pa "$name" "$transport" "$conc"
      done
    done
  else
    for transport in ${TRANSPORTS[$name]}; do
      run_load "$name" "$transport"
    done
  fi
  phase_end
  phase_start "stop $name"
  stop_server
  phase_end
done

if [ "$CLIENT" = perf_analyzer ]; then
  phase_start "report"
  if [ -s "$RESULTS/pa.jsonl" ]; then
    echo "perf_analyzer -b 1 --shape input:64 --measurement-interval $DURATION --measurement-mode count_windows --measurement-request-count ${PA_WINDOW_REQUESTS:-4000} --stability-percentage 1000 --max-trials 3"
    echo "server CPU: utime+stime of the server's process tree over the perf_analyzer call / inferences its statistics counted"
    echo "osprey: default flags on $WORK/osprey/repo; triton: python backend, PEER_ORT_THREADS=$PEER_ORT_THREADS (0 = ONNX Runtime's default)"
    echo
    "$PYTHON" "$ROOT/scripts/pa_measure.py" report --ratio osprey/triton --csv "$WORK/pa_report.csv" \
      --md "$WORK/pa_report.md" --title "compare_peers.sh: perf_analyzer, DURATION=$DURATION ms, PEER_ORT_THREADS=$PEER_ORT_THREADS" \
      "$RESULTS/pa.jsonl" || FAILURES+=("pa_measure.py report failed")
  else
    echo "no results" >&2
    FAILURES+=("no perf_analyzer results")
  fi
  phase_end
  echo
  echo "=== timings"
  printf '%s\n' "${PHASES[@]}"
  printf '%-28s %5ss\n' "total" "$(( $(date +%s) - T0 ))"
  echo
  echo "results (perf_analyzer CSV and log per run, pa.jsonl): $RESULTS"
  echo "report: $WORK/pa_report.csv and $WORK/pa_report.md"
  if [ ${#SKIPPED[@]} -gt 0 ]; then
    echo
    echo "=== skipped"
    printf '  %s\n' "${SKIPPED[@]}"
  fi
  if [ ${#FAILURES[@]} -gt 0 ]; then
    echo
    echo "=== failures"
    printf '  %s\n' "${FAILURES[@]}"
    exit 1
  fi
  exit 0
fi

phase_start "report"
shopt -s nullglob
jsons=("$RESULTS"/*.json)
shopt -u nullglob
if [ ${#jsons[@]} -eq 0 ]; then
  echo "no results" >&2
  exit 1
fi
# Sort the inputs in the order of PEERS, so that the report lists Osprey first.
ordered=()
for name in $PEERS; do
  for transport in rest-json rest-binary grpc; do
    [ -f "$RESULTS/$name-$transport.json" ] && ordered+=("$RESULTS/$name-$transport.json")
  done
done
REPORT=""
if "$OSPREY" report --help >/dev/null 2>&1; then
  if bounded 60 "$OSPREY" report --html "$WORK/report.html" --csv "$WORK/report.csv" "${ordered[@]}"; then
    REPORT="$WORK/report.html and $WORK/report.csv"
  else
    FAILURES+=("osprey report failed")
  fi
else
  echo "this osprey binary has no 'report' subcommand: a plain table of the JSON files instead"
  "$PYTHON" - "${ordered[@]}" <<'PY'
import json, sys
print(f"{'target':<9} {'transport':<11} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'batch':>6}")
for path in sys.argv[1:]:
    for r in json.load(open(path)):
        errs = sum(r.get("errors", {}).values())
        s = r.get("server") or {}
        batch = f"{s['avg_batch_size']:.1f}" if s.get("executions") else "-"
        lat = r["latency"]
        print(f"{r['target']:<9} {r['transport']:<11} {r.get('concurrency') or '':>4} {r['throughput']:>9.1f} "
              f"{lat['p50_us']/1000:>8.2f} {lat['p99_us']/1000:>8.2f} {errs:>7} {batch:>6}")
PY
fi
phase_end

echo
echo "=== timings"
printf '%s\n' "${PHASES[@]}"
printf '%-28s %5ss\n' "total" "$(( $(date +%s) - T0 ))"
echo
echo "results (JSON per target/transport): $RESULTS"
[ -n "$REPORT" ] && echo "report: $REPORT"
if [ ${#FAILURES[@]} -gt 0 ]; then
  echo
  echo "=== failures"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
