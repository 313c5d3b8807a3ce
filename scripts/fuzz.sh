#!/usr/bin/env bash
# Fuzzes the decoders that read untrusted bytes with cargo-fuzz (libFuzzer + AddressSanitizer,
# nightly toolchain): REST JSON bodies, REST binary-extension and raw bodies, gRPC
# ModelInferRequest conversion, config.pbtxt parsing, the tokenizer stage's encoding (targets in
# fuzz/fuzz_targets/).
#   scripts/fuzz.sh                      # every target, 10,000,000 executions each
#   RUNS=100000 scripts/fuzz.sh rest_json
#   MAX_LEN=4096 scripts/fuzz.sh tokenizer   # longest input in bytes (default 65536)
# Seeds come from fuzz/corpus/<target> (committed); what the fuzzer adds goes to
# .osprey/fuzz/corpus/<target>; a crash is written to fuzz/artifacts/<target>/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10000000}
MAX_LEN=${MAX_LEN:-65536}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(rest_json rest_binary grpc_request pbtxt tokenizer)
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
for t in "${targets[@]}"; do
  work=.osprey/fuzz/corpus/$t
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "fuzz: $t, $RUNS executions"
  start=$(date +%s)
  log=.osprey/fuzz/$t.log
  status=0
  cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$work" -- -runs="$RUNS" -max_len="$MAX_LEN" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done|SUMMARY)" "$log" || tail -n 30 "$log"
  echo "fuzz: $t finished in $(( $(date +%s) - start )) s (exit $status)"
  [ "$status" -eq 0 ] || { echo "fuzz: $t FAILED; see fuzz/artifacts/$t/" >&2; exit 1; }
done
