#!/usr/bin/env python3
"""Batch-delay timing: how long a lone request waits for a batch that never fills.

One release server (default flags) serves the MLP four times, identical but for
`dynamic_batching { max_queue_delay_microseconds: D }` with D = 0, 100, 500 and 2000. perf_analyzer
sends batch-1 requests over gRPC at concurrency 1, so no batch ever fills: each request should
wait D and leave, p50 ≈ D + the p50 at D = 0. The table shows p50, p99, p50 − p50(D=0) (the wait
the batcher actually added) and its error against D, and the server's own average queue time
from its statistics (the time the batcher held the request). Usage:

    cargo build --release -p osprey-server --bin osprey
    .venv/bin/python scripts/bench_delay.py [--delays 0,100,500,2000] [--window-requests 2000]
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bench_batching  # noqa: E402
import pa_measure  # noqa: E402

CONFIG = (ROOT / "scripts" / "peers" / "triton_user_mlp.pbtxt").read_text()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--delays", default="0,100,500,2000")
    ap.add_argument("--window-requests", type=int, default=2000)
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "osprey"))
    args = ap.parse_args()
    delays = [int(d) for d in args.delays.split(",")]
    if 0 not in delays:
        delays.insert(0, 0)
    pa_measure.WINDOW_REQUESTS = args.window_requests
    work = Path(tempfile.mkdtemp(prefix="osprey-delay-"))
    for d in delays:
        m = work / "repo" / f"mlp_d{d}"
        (m / "1").mkdir(parents=True)
        # A copy: the server refuses model files that are symlinks out of their model.
        shutil.copyfile(ROOT / "models" / "mlp" / "1" / "model.onnx", m / "1" / "model.onnx")
        (m / "config.pbtxt").write_text(
            CONFIG.replace("@NAME@", f"mlp_d{d}").replace(
                "@BATCHING@", f"dynamic_batching {{ max_queue_delay_microseconds: {d} }}"
            )
        )
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [args.binary, "serve", "--model-repository", str(work / "repo"), "--address", "127.0.0.1",
         "--http-port", "18200", "--grpc-port", "18201", "--metrics-port", "18202"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    rows = []
    try:
        bench_batching.wait_ready(server, "127.0.0.1:18200", 120)
        for d in delays:
            r = pa_measure.measure(sid=server.pid, stats_url="127.0.0.1:18200", model=f"mlp_d{d}",
                                   url="127.0.0.1:18201", protocol="grpc", concurrency=1,
                                   interval_ms=3000, csv_path=work / f"d{d}.csv", delay_us=d)
            if r["error"]:
                sys.exit(f"delay {d}: {r['error']}")
            # The server's own average queue time (its statistics, as perf_analyzer reports them).
            with open(work / f"d{d}.csv") as f:
                r["queue_us"] = float(next(csv.DictReader(f))["Server Queue"])
            rows.append(r)
    finally:
        bench_batching.stop(server)
    base = rows[0]["p50_us"]
    print(f"gRPC, concurrency 1, batch-1 requests (perf_analyzer, {args.window_requests} requests a window)")
    print(f"{'delay µs':>9} {'p50 µs':>8} {'p99 µs':>8} {'added µs':>9} {'added - delay':>14} "
          f"{'server queue µs':>16} {'queue - delay':>14} {'infer/s':>8}")
    for r in rows:
        added = r["p50_us"] - base
        print(f"{r['delay_us']:>9} {r['p50_us']:>8.0f} {r['p99_us']:>8.0f} {added:>9.0f} "
              f"{added - r['delay_us']:>+14.0f} {r['queue_us']:>16.0f} {r['queue_us'] - r['delay_us']:>+14.0f} "
              f"{r['throughput']:>8.0f}")


if __name__ == "__main__":
    main()
