#!/usr/bin/env python3
"""Osprey under attack and overload (issue 11's benchmarks), on the bundled mlp and text_sentiment.

Starts target/release/osprey (default flags unless said) and measures, reading the server's RSS
from /proc:
  1. attacks: /explain with occlusion on one 20,000-word string; /explain KernelSHAP with
     samples 65,536; a BYTES request of 2,000,000 empty strings. Status, time to answer, RSS.
  2. overload at 2x capacity: capacity = closed-loop throughput (`osprey loadtest`, REST binary,
     c=64); then an open loop at twice that for 10 s: accepted vs refused (503), p99 of the
     accepted, time to get a 503 while the queue is full (timed here, one request at a time),
     RSS before/after, and the closed-loop throughput right after (recovery).
  3. slow connections: N connections that each send half a request head and stall, beside a
     normal client (closed loop c=8 over REST keep-alive connections opened before the flood,
     and a new gRPC client during it): throughput and p99 of the normal client before / during,
     how many slow connections were held and how many refused, and how long until the header
     timeout has cut them (--http-header-timeout-secs 10 for this part).

    scripts/bench_hardening.py [--slow 10000] [--json target/bench_hardening.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "osprey"
HTTP, GRPC, METRICS = 18300, 18301, 18302


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def post(path: str, body: bytes, timeout: float = 300.0) -> tuple[int, float, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP}{path}", data=body, method="POST")
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, time.monotonic() - t0, r.read(300).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, time.monotonic() - t0, e.read(300).decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        # Closed before the request was sent whole: e.g. the connection cap's 503 and close.
        return 0, time.monotonic() - t0, str(e)


def start(extra: list[str]) -> subprocess.Popen:
    p = subprocess.Popen(
        [str(BIN), "serve", "--model-repository", str(ROOT / "models"), "--model", "mlp",
         "--model", "text_sentiment", "--address", "127.0.0.1", "--http-port", str(HTTP),
         "--grpc-port", str(GRPC), "--metrics-port", str(METRICS), "--log-level", "warn", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{HTTP}/v2/health/ready", timeout=1)
            return p
        except OSError:
            time.sleep(0.2)
    p.kill()
    sys.exit("osprey did not become ready")


def stop(p: subprocess.Popen) -> None:
    p.terminate()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()


def loadtest(args: list[str], out: Path) -> dict:
    url = [] if "--url" in args else ["--url", f"127.0.0.1:{HTTP}"]
    subprocess.run([str(BIN), "loadtest", "-m", "mlp", "--metrics-url", f"127.0.0.1:{METRICS}",
                    "--json", str(out), *url, *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    step = json.loads(out.read_text())[0]
    return {"throughput": round(step["throughput"]), "ok": step["ok"], "errors": step["errors"],
            "p50_us": step["latency"]["p50_us"], "p99_us": step["latency"]["p99_us"]}


def attacks(work: Path) -> dict:
    p = start([])
    out = {"rss_start_kib": rss_kib(p.pid)}
    words = " ".join(["word"] * 20_000)
    body = json.dumps({"inputs": [{"name": "text", "shape": [1, 1], "datatype": "BYTES",
                                   "data": [words]}], "parameters": {"method": "occlusion"}})
    st, dt, text = post("/v2/models/text_sentiment/explain", body.encode())
    out["explain_20k_words"] = {"status": st, "seconds": round(dt, 3), "answer": text[:160],
                                "rss_kib": rss_kib(p.pid)}
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                   "data": [0.5] * 64}], "parameters": {"samples": 65536}})
    st, dt, text = post("/v2/models/mlp/explain", body.encode())
    out["explain_65536_samples"] = {"status": st, "seconds": round(dt, 3), "answer": text[:160],
                                    "rss_kib": rss_kib(p.pid)}
    n = 2_000_000
    body = json.dumps({"inputs": [{"name": "text", "shape": [n, 1], "datatype": "BYTES",
                                   "data": [""] * n}]})
    st, dt, text = post("/v2/models/text_sentiment/infer", body.encode())
    out["bytes_2m_empty_strings"] = {"status": st, "seconds": round(dt, 3), "answer": text[:160],
                                     "body_bytes": len(body), "rss_kib": rss_kib(p.pid)}
    stop(p)
    return out


def overload(work: Path) -> dict:
    p = start([])
    out = {"rss_start_kib": rss_kib(p.pid)}
    cap = loadtest(["--transport", "rest-binary", "--concurrency", "64", "--duration", "5"],
                   work / "cap.json")
    out["capacity"] = cap
    rate = 2 * cap["throughput"]
    lt = subprocess.Popen([str(BIN), "loadtest", "-m", "mlp", "--url", f"127.0.0.1:{HTTP}",
                           "--transport", "rest-binary",
                           "--rate", str(rate), "--duration", "10", "--warmup", "1",
                           "--max-error-rate", "1", "--json", str(work / "over.json")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4)  # into the measured part of the overload: the queue is full by then
    rejects, probes = [], {}
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                   "data": [0.5] * 64}]}).encode()
    for _ in range(50):
        st, dt, _ = post("/v2/models/mlp/infer", body, timeout=30)
        probes[st] = probes.get(st, 0) + 1
        if st in (0, 503):
            rejects.append(dt * 1e6)
    out["probe_statuses"] = {str(k): v for k, v in probes.items()}
    out["rss_during_kib"] = rss_kib(p.pid)
    lt.wait()
    step = json.loads((work / "over.json").read_text())[0]
    out["overload"] = {"rate": rate, "accepted": step["ok"], "errors": step["errors"],
                       "p99_accepted_us": step["latency"]["p99_us"],
                       "throughput": round(step["throughput"])}
    rejects.sort()
    out["time_to_503_us"] = {"n": len(rejects),
                             "p50": round(rejects[len(rejects) // 2]) if rejects else None,
                             "max": round(rejects[-1]) if rejects else None}
    out["recovery"] = loadtest(["--transport", "rest-binary", "--concurrency", "64",
                                "--duration", "5"], work / "after.json")
    out["rss_end_kib"] = rss_kib(p.pid)
    stop(p)
    return out


def slow_connections(work: Path, n: int) -> dict:
    timeout_s = 10
    p = start(["--http-header-timeout-secs", str(timeout_s)])
    out = {"slow_connections": n, "header_timeout_s": timeout_s, "rss_start_kib": rss_kib(p.pid)}
    out["before"] = loadtest(["--transport", "rest-binary", "--concurrency", "8", "--duration",
                              "5"], work / "before.json")
    # A normal REST client whose keep-alive connections exist before the flood.
    during = subprocess.Popen([str(BIN), "loadtest", "-m", "mlp", "--url", f"127.0.0.1:{HTTP}",
                               "--transport", "rest-binary",
                               "--concurrency", "8", "--duration", "8", "--warmup", "0",
                               "--json", str(work / "during.json")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # its connections are open before the flood starts
    socks, refused = [], 0
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket()
        s.setblocking(True)
        try:
            s.connect(("127.0.0.1", HTTP))
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: slow\r\n")
            socks.append(s)
        except OSError:
            refused += 1
            s.close()
    out["flood_seconds"] = round(time.monotonic() - t0, 2)
    grpc = loadtest(["--url", f"127.0.0.1:{GRPC}", "--transport", "grpc", "--concurrency", "8",
                     "--duration", "3", "--stats-url", f"127.0.0.1:{HTTP}"], work / "grpc.json")
    during.wait()
    step = json.loads((work / "during.json").read_text())[0]
    out["during_rest_keepalive"] = {"throughput": round(step["throughput"]),
                                    "p99_us": step["latency"]["p99_us"], "errors": step["errors"]}
    out["during_new_grpc_client"] = grpc
    out["rss_flooded_kib"] = rss_kib(p.pid)
    # Which slow connections the server answered at once (503 over the cap) and when the rest
    # were cut by the header timeout.
    answered_503, cut = 0, 0
    deadline = time.monotonic() + timeout_s + 20
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = s.recv(64)
            if data.startswith(b"HTTP/1.1 503"):
                answered_503 += 1
            elif data == b"" or data.startswith(b"HTTP/1.1 408"):
                cut += 1
        except OSError:
            pass
        s.close()
    out["slow_answered_503_over_cap"] = answered_503
    out["slow_cut_by_header_timeout"] = cut
    out["connect_refused_by_kernel"] = refused
    out["all_cut_after_s"] = round(time.monotonic() - t0, 1)
    out["after"] = loadtest(["--transport", "rest-binary", "--concurrency", "8", "--duration",
                             "5"], work / "after.json")
    out["rss_end_kib"] = rss_kib(p.pid)
    stop(p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slow", type=int, default=10_000)
    ap.add_argument("--parts", default="attacks,overload,slow")
    ap.add_argument("--json", default=str(ROOT / "target" / "bench_hardening.json"))
    args = ap.parse_args()
    if not BIN.exists():
        sys.exit("build first: cargo build --release -p osprey-server --bin osprey")
    want = args.slow * 2 + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, want), hard), hard))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part in args.parts.split(","):
            fn = {"attacks": attacks, "overload": overload,
                  "slow": lambda w: slow_connections(w, args.slow)}[part]
            results[part] = fn(work)
            print(json.dumps({part: results[part]}, indent=1), flush=True)
    Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
