#!/usr/bin/env python3
"""GPU benchmark: in-process throughput against the server's, on the GPU and on the CPU.

For the MLP (64->256->10, FP32) at batches of 64, 256 and 1024 rows, and all-MiniLM-L6-v2 at 32
sentences, it measures:
  - in process: one instance run back to back with no server (runtimes/examples/throughput.rs,
    `target/release/examples/throughput`), on `--device` and on the CPU;
  - through the server: `target/release/osprey` serving a temporary repository where the same
    model is a KIND_GPU instance with `dynamic_batching { }` (max_batch_size 1024 for the MLP,
    32 for MiniLM), driven by `osprey loadtest` over gRPC with 16 closed-loop clients each
    sending whole batches; rows per second = requests per second x rows per request.
and prints rows per second for each, the server/in-process ratio (goal: >= 0.90) and GPU/CPU.
The MLP runs on ONNX Runtime's CUDA provider (ORT_DYLIB_PATH must name onnxruntime-gpu's
libonnxruntime.so, with its CUDA/cuDNN libraries on LD_LIBRARY_PATH); MiniLM runs on candle and
needs a binary built with `--features cuda`. A measurement that fails (no provider, no cuda
build) is reported as such and the rest goes on. scripts/gpu-check.sh runs this. Usage:

    python3 scripts/bench_gpu.py [--device cuda:0] [--seconds 5] [--json out.json]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bench_batching import stop, wait_ready  # noqa: E402

SENTENCE = "Inference servers merge concurrent requests into batches so the hardware works on many rows."


def in_process(exe: Path, model: Path, device: str, batch: int, seconds: float, tokens: int = 16):
    cmd = [str(exe), str(model), device, str(batch), str(seconds), str(tokens)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def make_repo(dst: Path, gpu: int) -> None:
    group = f"instance_group [ {{ count: 1 kind: KIND_GPU gpus: [ {gpu} ] }} ]\n"
    mlp = dst / "mlp_gpu"
    (mlp / "1").mkdir(parents=True)
    shutil.copyfile(ROOT / "models/mlp/1/model.onnx", mlp / "1/model.onnx")
    (mlp / "config.pbtxt").write_text(
        'name: "mlp_gpu"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 1024\n'
        'input [ { name: "input" data_type: TYPE_FP32 dims: [ 64 ] } ]\n'
        'output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] } ]\n'
        "dynamic_batching { }\n" + group
    )
    minilm = dst / "minilm_gpu"
    shutil.copytree(ROOT / "models/minilm/1", minilm / "1")
    config = (ROOT / "models/minilm/config.pbtxt").read_text()
    config = re.sub(r"instance_group \[[^\]]*\]", group.strip(), config)
    config = config.replace('name: "minilm"', 'name: "minilm_gpu"')
    (minilm / "config.pbtxt").write_text(config)


def through_server(osprey: Path, model: str, batch: int, seconds: float, work: Path, extra):
    out = work / f"{model}-{batch}.json"
    cmd = [str(osprey), "loadtest", "--url", "127.0.0.1:18001", "--stats-url", "127.0.0.1:18000",
           "--metrics-url", "127.0.0.1:18002", "--transport", "grpc", "-m", model,
           "--concurrency", "16", "--duration", str(seconds), "--warmup", "2", "--quiet",
           "--json", str(out)] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0 or not out.exists():
        return {"error": (p.stderr or p.stdout).strip().splitlines()[-1:] or ["failed"]}
    step = json.loads(out.read_text())[0]
    server = step.get("server") or {}
    return {"rows_per_s": step["throughput"] * batch, "p50_us": step["latency"]["p50_us"],
            "avg_batch_rows": server.get("avg_batch_size"),
            "cpu_us_per_inference": server.get("cpu_us_per_inference")}


def ratio(a, b):
    try:
        return f"{a['rows_per_s'] / b['rows_per_s']:.2f}x"
    except (KeyError, TypeError, ZeroDivisionError):
        return "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--osprey", default=str(ROOT / "target/release/osprey"))
    ap.add_argument("--throughput", default=str(ROOT / "target/release/examples/throughput"))
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args()
    gpu = int(args.device.split(":")[1]) if ":" in args.device else 0
    exe, osprey = Path(args.throughput), Path(args.osprey)
    cases = [("mlp", ROOT / "models/mlp/1/model.onnx", b) for b in (64, 256, 1024)]
    cases.append(("minilm", ROOT / "models/minilm/1", 32))

    results = []
    for name, path, batch in cases:
        results.append({"model": name, "batch": batch,
                        "gpu": in_process(exe, path, args.device, batch, args.seconds),
                        "cpu": in_process(exe, path, "cpu", batch, args.seconds)})

    with tempfile.TemporaryDirectory(prefix="osprey-gpu-") as tmp:
        work = Path(tmp)
        make_repo(work / "repo", gpu)
        request = {"inputs": [{"name": "text", "shape": [32, 1], "datatype": "BYTES",
                               "data": [SENTENCE] * 32}]}
        (work / "minilm.json").write_text(json.dumps(request))
        log = open(work / "server.log", "w")
        server = subprocess.Popen(
            [str(osprey), "serve", "--model-repository", str(work / "repo"), "--address", "127.0.0.1",
             "--http-port", "18000", "--grpc-port", "18001", "--metrics-port", "18002",
             "--strict-readiness", "false"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_ready(server, "127.0.0.1:18000", 120)
            for r in results:
                if r["model"] == "mlp":
                    extra = ["--batch-size", str(r["batch"]), "--shape", "input:64"]
                    r["server"] = through_server(osprey, "mlp_gpu", r["batch"], args.seconds, work, extra)
                else:
                    extra = ["--input-file", str(work / "minilm.json")]
                    r["server"] = through_server(osprey, "minilm_gpu", 32, args.seconds, work, extra)
        finally:
            stop(server)
            log.close()
            index = (work / "server.log").read_text()
            for line in index.splitlines():
                if "UNAVAILABLE" in line or "error" in line.lower():
                    print("server:", line[:300])

    print(f"{'model':8} {'batch':>5} {'GPU in-proc':>12} {'server':>12} {'srv/in-proc':>11} "
          f"{'CPU in-proc':>12} {'GPU/CPU':>8}  rows/s")
    for r in results:
        fmt = lambda m: f"{m['rows_per_s']:.0f}" if "rows_per_s" in m else "error"  # noqa: E731
        print(f"{r['model']:8} {r['batch']:>5} {fmt(r['gpu']):>12} {fmt(r['server']):>12} "
              f"{ratio(r['server'], r['gpu']):>11} {fmt(r['cpu']):>12} {ratio(r['gpu'], r['cpu']):>8}")
        for where in ("gpu", "server", "cpu"):
            if "error" in r[where]:
                print(f"    {where}: {r[where]['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
