#!/usr/bin/env python3
"""Embeddings benchmark through the server: sentences per second for requests of 1, 8 and 32
short or long sentences to `minilm`, with `osprey loadtest` (closed loop) over REST (JSON) and
gRPC against the release server on loopback. The in-process counterpart is the criterion bench
`cargo bench -p osprey-benches --bench embeddings`. Usage:

    cargo build --release -p osprey-server --bin osprey
    .venv/bin/python scripts/bench_embeddings.py [--duration 5] [--concurrency 1,4]

Prints one row per (sentences per request, length, transport, concurrency): requests/s,
sentences/s, p50/p99 latency and the server's average executed batch (rows per execution).
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "osprey"

SHORT = "A man is playing a guitar."
LONG = (
    "Inference servers sit between applications and models: they accept requests over HTTP or "
    "gRPC, validate tensors, queue them, merge concurrent requests into batches so that the "
    "hardware works on many rows at once, run the model, and split the answers back to every "
    "caller. Latency at low load and throughput at high load pull in opposite directions, and a "
    "good batcher trades a little of one for much of the other."
)


def wait_ready(http: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{http}/v2/models/minilm/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("minilm did not become ready")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--concurrency", default="1,4")
    ap.add_argument("--http-port", type=int, default=18500)
    ap.add_argument("--grpc-port", type=int, default=18501)
    a = ap.parse_args()
    http, grpc = f"127.0.0.1:{a.http_port}", f"127.0.0.1:{a.grpc_port}"
    server = subprocess.Popen(
        [str(BIN), "serve", "--model-repository", str(ROOT / "models"), "--model", "minilm",
         "--http-port", str(a.http_port), "--grpc-port", str(a.grpc_port), "--metrics-port", "0",
         "--log-level", "warn"],
        cwd=ROOT,
    )
    rows = []
    try:
        wait_ready(http)
        with tempfile.TemporaryDirectory() as tmp:
            for n in (1, 8, 32):
                for kind, text in (("short", SHORT), ("long", LONG)):
                    req = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [n, 1],
                                       "data": [text] * n}]}
                    f = Path(tmp) / f"{kind}{n}.json"
                    f.write_text(json.dumps(req))
                    for transport, url in (("rest-json", http), ("grpc", grpc)):
                        out = Path(tmp) / f"{kind}{n}-{transport}.json"
                        cmd = [str(BIN), "loadtest", "--url", url, "--transport", transport,
                               "-m", "minilm", "--input-file", str(f), "--concurrency",
                               a.concurrency, "--duration", str(a.duration), "--warmup", "1",
                               "--timeout", "60", "--quiet", "--json", str(out)]
                        if transport == "grpc":
                            cmd += ["--stats-url", http]
                        subprocess.run(cmd, check=True, cwd=ROOT)
                        for step in json.loads(out.read_text()):
                            srv = step.get("server") or {}
                            rows.append((n, kind, transport, step["concurrency"],
                                         step["throughput"], step["throughput"] * n,
                                         step["latency"]["p50_us"], step["latency"]["p99_us"],
                                         srv.get("avg_batch_size")))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("| sentences/request | length | transport | c | requests/s | sentences/s | p50 ms | p99 ms | avg batch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, kind, t, c, rps, sps, p50, p99, batch in rows:
        b = f"{batch:.1f}" if isinstance(batch, (int, float)) else "-"
        print(f"| {n} | {kind} | {t} | {c} | {rps:,.1f} | {sps:,.0f} | {p50/1000:.1f} | {p99/1000:.1f} | {b} |")


if __name__ == "__main__":
    sys.exit(main())
