#!/usr/bin/env python3
"""Batching benchmark: perf_analyzer against the release server, dynamic batching off and on.

Builds a temporary repository with the MLP and the identity model (no work at all: the
transport's own limit), each with and without `dynamic_batching`, starts `target/release/osprey`
on it, and runs perf_analyzer (scripts/perf_analyzer.sh) with batch-1 requests at each
concurrency over gRPC and REST (binary tensors). For every run it reports throughput, p50 and p99
latency, the average executed batch size from the server's statistics (inference_count /
execution_count over the run) and the server's CPU time per inference (from /proc; the whole
run, warm-up and all trials, divided by the inferences the statistics counted). Usage:

    cargo build --release -p osprey-server --bin osprey
    .venv/bin/python scripts/bench_batching.py [--concurrency 1,8,64] [--interval-ms 3000]
"""

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_repo(dst: Path) -> list[str]:
    names = []
    for model in ("mlp", "identity"):
        src = ROOT / "models" / model
        config = (src / "config.pbtxt").read_text()
        plain = re.sub(r"dynamic_batching\s*\{[^}]*\}\s*", "", config)
        for name, text in ((f"{model}_nobatch", plain), (model, plain + "dynamic_batching { }\n")):
            d = dst / name
            shutil.copytree(src / "1", d / "1")
            (d / "config.pbtxt").write_text(re.sub(r'name: "[^"]*"', f'name: "{name}"', text, count=1))
            names.append(name)
    return names


def stats(http: str, model: str) -> tuple[int, int]:
    with urllib.request.urlopen(f"http://{http}/v2/models/{model}/stats") as r:
        m = json.load(r)["model_stats"][0]
    return int(m["inference_count"]), int(m["execution_count"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_perf(model: str, url: str, proto: str, conc: int, interval_ms: int, out: Path) -> dict:
    cmd = [
        "bash", str(ROOT / "scripts/perf_analyzer.sh"), "-m", model, "-u", url, "-i", proto,
        "--shape", "input:64", "-b", "1", "--concurrency-range", f"{conc}:{conc}",
        "--measurement-interval", str(interval_ms), "--stability-percentage", "1000",
        "--max-trials", "3", "-f", str(out),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=300)
    with out.open() as f:
        row = next(csv.DictReader(f))
    return {
        "throughput": float(row["Inferences/Second"]),
        "p50_us": float(row["p50 latency"]),
        "p99_us": float(row["p99 latency"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--interval-ms", type=int, default=3000)
    ap.add_argument("--json", default=str(ROOT / "target" / "bench_batching.json"))
    ap.add_argument("--models", default="", help="comma-separated subset, e.g. mlp,mlp_nobatch")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "osprey"))
    ap.add_argument("--server-args", default="", help="extra `osprey serve` flags, e.g. '--intra-op-threads 1'")
    args = ap.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        sys.exit("build first: cargo build --release -p osprey-server --bin osprey")
    work = Path(tempfile.mkdtemp(prefix="osprey-bench-"))
    models = make_repo(work / "repo")
    http, grpc = "127.0.0.1:18100", "127.0.0.1:18101"
    server = subprocess.Popen(
        [str(binary), "serve", "--model-repository", str(work / "repo"), "--address", "127.0.0.1",
         "--http-port", "18100", "--grpc-port", "18101", "--metrics-port", "18102", "--log-level", "warn",
         *args.server_args.split()],
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{http}/v2/health/ready")
                break
            except OSError:
                time.sleep(0.05)
        results = []
        print(f"{'model':<16}{'proto':<6}{'conc':>5}{'infer/s':>11}{'p50 us':>9}{'p99 us':>9}{'avg batch':>10}"
              f"{'cpu us/inf':>11}")
        wanted = [m for m in args.models.split(",") if m]
        for model in [m for m in models if not wanted or m in wanted]:
            for proto, url in (("grpc", grpc), ("http", http)):
                for conc in [int(c) for c in args.concurrency.split(",")]:
                    before, cpu0 = stats(http, model), cpu_seconds(server.pid)
                    r = run_perf(model, url, proto, conc, args.interval_ms, work / "pa.csv")
                    after, cpu1 = stats(http, model), cpu_seconds(server.pid)
                    execs = after[1] - before[1]
                    inferences = after[0] - before[0]
                    r.update(model=model, protocol=proto, concurrency=conc,
                             avg_batch=inferences / execs if execs else 0.0,
                             server_cpu_us_per_inference=1e6 * (cpu1 - cpu0) / inferences if inferences else 0.0)
                    results.append(r)
                    print(f"{model:<16}{proto:<6}{conc:>5}{r['throughput']:>11.0f}{r['p50_us']:>9.0f}"
                          f"{r['p99_us']:>9.0f}{r['avg_batch']:>10.2f}{r['server_cpu_us_per_inference']:>11.1f}",
                          flush=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"results: {args.json}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
