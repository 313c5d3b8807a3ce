#!/usr/bin/env python3
"""Batching benchmark: perf_analyzer against the release server, dynamic batching off and on.

Builds a temporary repository with the MLP, the heavy MLP (512->2048->2048->10: batching must pay)
and the identity model (no work at all: the transport's own limit), each twice from the same
model.onnx: `<model>` with `dynamic_batching { }` and `<model>_nobatch` without it
(`max_batch_size: 64` in both). It starts `target/release/osprey` on it with its default flags
(loopback addresses and private ports only) and runs perf_analyzer (scripts/perf_analyzer.sh)
with batch-1 requests at each concurrency, over gRPC (and REST with binary tensors if asked). For
every run it reports throughput, p50 and p99 latency, the server's CPU time per inference and
the average executed batch size, then the ratios batching/no-batching. CPU and batch size are
sampled just before and after each perf_analyzer call (scripts/pa_measure.py): utime+stime of
every process in the server's session, from /proc, over the inferences and executions its
statistics counted. Every perf_analyzer call is bounded (--timeout); a failed or timed-out run
is recorded and the benchmark goes on. Usage:

    cargo build --release -p osprey-server --bin osprey
    .venv/bin/python scripts/bench_batching.py [--concurrency 1,8,64] [--interval-ms 3000]
        [--protocols grpc] [--models mlp,heavy,identity] [--no-parameters]
"""

import argparse
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
sys.path.insert(0, str(ROOT / "scripts"))
import pa_measure  # noqa: E402

MODELS = ("mlp", "heavy", "identity")
SHAPES = {"mlp": "input:64", "heavy": "input:512", "identity": "input:64"}
COLUMNS = [("model", "model", "{}")] + [c for c in pa_measure.COLUMNS if c[0] != "target"]


def make_repo(dst: Path, models, strip_parameters: bool) -> list[str]:
    """`<model>` (dynamic_batching { }) and `<model>_nobatch` (none) per model, same model.onnx."""
    names = []
    for model in models:
        src = ROOT / "models" / model
        config = (src / "config.pbtxt").read_text()
        plain = re.sub(r"dynamic_batching\s*\{[^}]*\}\s*", "", config)
        if strip_parameters:  # as a Triton user writes it: no Osprey-specific parameters
            plain = re.sub(r"(?m)^parameters\s*\{.*\}\s*\n", "", plain)
        for name, text in ((model, plain + "dynamic_batching { }\n"), (f"{model}_nobatch", plain)):
            d = dst / name
            (d / "1").mkdir(parents=True)
            # A copy: the server refuses model files that are symlinks out of their model.
            shutil.copyfile(src / "1" / "model.onnx", d / "1" / "model.onnx")
            (d / "config.pbtxt").write_text(re.sub(r'name: "[^"]*"', f'name: "{name}"', text, count=1))
            names.append(name)
    return names


def wait_ready(server: subprocess.Popen, http: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"osprey exited ({server.returncode}) before it was ready")
        try:
            urllib.request.urlopen(f"http://{http}/v2/health/ready", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"osprey not ready after {timeout_s:.0f}s")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 20 s."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--interval-ms", type=int, default=3000, help="perf_analyzer --measurement-interval")
    ap.add_argument("--protocols", default="grpc,http", help="grpc, http (binary tensors) or both")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated subset of mlp,heavy,identity (each runs with and without batching)")
    ap.add_argument("--timeout", type=int, default=0,
                    help="seconds per perf_analyzer call; default 4 intervals + 30")
    ap.add_argument("--no-parameters", action="store_true",
                    help="drop `parameters` (intra_op_thread_count) from the configs, as a Triton user writes them")
    ap.add_argument("--json", default=str(ROOT / "target" / "bench_batching.json"))
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "osprey"))
    ap.add_argument("--server-args", default="", help="extra `osprey serve` flags, e.g. '--intra-op-threads 1'")
    ap.add_argument("--ready-timeout", type=float, default=120)
    args = ap.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        sys.exit("build first: cargo build --release -p osprey-server --bin osprey")
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        sys.exit(f"unknown models {sorted(unknown)}: choose from {','.join(MODELS)}")
    protocols = [p for p in args.protocols.split(",") if p]
    concurrency = [int(c) for c in args.concurrency.split(",")]
    timeout = args.timeout or pa_measure.default_timeout(args.interval_ms)

    work = Path(tempfile.mkdtemp(prefix="osprey-bench-"))
    names = make_repo(work / "repo", models, args.no_parameters)
    http, grpc = "127.0.0.1:18100", "127.0.0.1:18101"
    log = (work / "server.log").open("wb")
    # Its own session: its pid is the session id pa_measure sums CPU time over.
    server = subprocess.Popen(
        [str(binary), "serve", "--model-repository", str(work / "repo"), "--address", "127.0.0.1",
         "--http-port", "18100", "--grpc-port", "18101", "--metrics-port", "18102",
         *args.server_args.split()],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    results = []
    try:
        wait_ready(server, http, args.ready_timeout)
        print(f"osprey {' '.join(args.server_args.split()) or '(default flags)'} on {work / 'repo'}: "
              f"{', '.join(names)}; perf_analyzer -b 1 --measurement-interval {args.interval_ms} "
              f"--stability-percentage 1000 --max-trials 3, each call bounded to {timeout}s", flush=True)
        for model in models:
            for proto in protocols:
                url = grpc if proto == "grpc" else http
                for conc in concurrency:
                    for name in (model, f"{model}_nobatch"):
                        r = pa_measure.measure(
                            sid=server.pid, stats_url=http, model=name, url=url, protocol=proto,
                            concurrency=conc, interval_ms=args.interval_ms, timeout=timeout,
                            csv_path=work / f"pa-{name}-{proto}-c{conc}.csv", shape=SHAPES[model],
                            target=name, base_model=model,
                            batching="on" if name == model else "off")
                        results.append(r)
                        line = f"{name} {proto} c={conc}: "
                        if r.get("throughput") is not None:
                            line += (f"{r['throughput']:.0f} infer/s, p50 {r['p50_us']:.0f} µs, "
                                     f"CPU {r.get('cpu_us_per_inference') or 0:.1f} µs/inf, "
                                     f"batch {r.get('avg_batch') or 0:.2f}")
                        if r["error"]:
                            line += f" ERROR {r['error']}"
                        print(line, flush=True)
                        if r["error"] and server.poll() is not None:
                            raise SystemExit(f"osprey exited ({server.returncode}); log: {work / 'server.log'}")
    finally:
        stop(server)
        log.close()
        if results:
            print()
            pa_measure.print_table(results, COLUMNS)
            # ratios batching/no-batching per (model, transport, concurrency)
            for r in results:
                r["variant"] = "batching" if r["batching"] == "on" else "no-batching"
            lines = pa_measure.ratio_lines(results, "batching", "no-batching", key="variant",
                                           group=("base_model", "transport", "concurrency"))
            print()
            print("\n".join(lines))
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(results, indent=2))
            print(f"\nresults: {args.json}")
        failed = [r for r in results if r["error"]]
        if failed:
            print(f"\n{len(failed)} run(s) failed; server log: {work / 'server.log'}")
            for r in failed:
                print(f"  {r['model']} {r['transport']} c={r['concurrency']}: {r['error']}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if any(r["error"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
