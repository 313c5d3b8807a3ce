#!/usr/bin/env python3
"""Two Osprey binaries, A and B, on the same model, alternated round by round on this machine.

Each round starts A, then B (default flags, a repository with the MLP written as a Triton user
writes it: scripts/peers/triton_user_mlp.pbtxt with `dynamic_batching { }`), and runs the same
perf_analyzer calls against each (scripts/pa_measure.py: throughput, p50, server CPU µs per
inference from /proc). It prints every run, then per transport and concurrency the median and
range over the rounds of each binary and B/A of the medians. Alternating rounds keeps a noisy,
shared machine from favouring whichever binary ran in the quiet minute.

    scripts/bench_ab.py --a /path/old/osprey --b target/release/osprey --rounds 3
    PA_EXTRA="--async --max-threads 2" scripts/bench_ab.py --a ... --b ... --concurrency 64
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import bench_batching  # noqa: E402
import pa_measure  # noqa: E402

KEYS = [("throughput", "infer/s", "{:.0f}"), ("p50_us", "p50 µs", "{:.0f}"),
        ("cpu_us_per_inference", "CPU µs/inf", "{:.1f}")]


def repo(dst: Path) -> None:
    m = dst / "mlp"
    (m / "1").mkdir(parents=True)
    shutil.copy(ROOT / "models" / "mlp" / "1" / "model.onnx", m / "1" / "model.onnx")
    text = (ROOT / "scripts" / "peers" / "triton_user_mlp.pbtxt").read_text()
    (m / "config.pbtxt").write_text(
        text.replace("@NAME@", "mlp").replace("@BATCHING@", "dynamic_batching { }"))


def run_binary(binary: str, label: str, repo_dir: Path, work: Path, args) -> list[dict]:
    http, grpc = f"127.0.0.1:{args.http_port}", f"127.0.0.1:{args.grpc_port}"
    server = subprocess.Popen(
        [binary, "serve", "--model-repository", str(repo_dir), "--address", "127.0.0.1",
         "--http-port", str(args.http_port), "--grpc-port", str(args.grpc_port),
         "--metrics-port", str(args.grpc_port + 1), "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = []
    try:
        bench_batching.wait_ready(server, http, 60)
        for proto in args.protocols.split(","):
            for c in [int(c) for c in args.concurrency.split(",")]:
                r = pa_measure.measure(
                    sid=server.pid, stats_url=http, model="mlp",
                    url=grpc if proto == "grpc" else http, protocol=proto, concurrency=c,
                    interval_ms=args.interval_ms, csv_path=work / f"{label}-{proto}-{c}.csv",
                    target=label)
                print(f"{label} {proto} c={c}: " + ", ".join(
                    f"{h} {f.format(r[k])}" for k, h, f in KEYS if r.get(k) is not None)
                    + (f"  ERROR {r['error']}" if r["error"] else ""), flush=True)
                out.append(r)
    finally:
        bench_batching.stop(server)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="binary A (the baseline)")
    ap.add_argument("--b", required=True, help="binary B (the change)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--protocols", default="http,grpc")
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--interval-ms", type=int, default=3000)
    ap.add_argument("--http-port", type=int, default=18100)
    ap.add_argument("--grpc-port", type=int, default=18101)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repo(work / "repo")
        results = []
        for _ in range(args.rounds):
            for label, binary in (("A", args.a), ("B", args.b)):
                results += run_binary(binary, label, work / "repo", work, args)
    print("\nmedian [min–max] over rounds; B/A of the medians")
    for proto in args.protocols.split(","):
        for c in [int(c) for c in args.concurrency.split(",")]:
            line = [f"{proto} c={c}:"]
            for k, h, f in KEYS:
                med = {}
                for label in ("A", "B"):
                    v = [r[k] for r in results if r["target"] == label and r["transport"] == proto
                         and r["concurrency"] == c and r.get(k) is not None and not r["error"]]
                    if v:
                        med[label] = statistics.median(v)
                        line.append(f"{h} {label} {f.format(med[label])} "
                                    f"[{f.format(min(v))}–{f.format(max(v))}]")
                if len(med) == 2 and med["A"]:
                    line.append(f"B/A {med['B'] / med['A']:.2f}x")
            print("  ".join(line))


if __name__ == "__main__":
    main()
