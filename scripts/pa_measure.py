#!/usr/bin/env python3
"""One bounded perf_analyzer run with the server's own cost around it, and the tables built from them.

Used by scripts/compare_peers.sh (CLIENT=perf_analyzer) and scripts/bench_batching.py. Standard
library only, so that any python3 runs it.

For a run it samples, immediately before and after the perf_analyzer call:
  * the server's CPU time: utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks of
    sysconf(SC_CLK_TCK) = `getconf CLK_TCK`) summed over every process of the server's session or
    process group (the server is started with setsid, so its pid is the session id; this takes in
    Triton's python backend stubs and any worker processes);
  * the server's statistics, GET /v2/models/{m}/stats -> model_stats[0].inference_count and
    execution_count (Triton's statistics extension; Osprey and Triton have it).
and reports cpu_us_per_inference = Δcpu_seconds * 1e6 / Δinference_count and
avg_batch = Δinference_count / Δexecution_count. The window covers the whole perf_analyzer call
(connection set-up, every trial), so both deltas count the same inferences.

    pa_measure.py run --sid PID --stats-url 127.0.0.1:8000 --model mlp --url 127.0.0.1:8001 \\
        --protocol grpc --concurrency 8 --interval-ms 2000 --timeout 60 --csv out.csv \\
        --target osprey --out results.jsonl
    pa_measure.py report --ratio osprey/triton --csv report.csv --md report.md results.jsonl
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERF_ANALYZER = ROOT / "scripts" / "perf_analyzer.sh"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(sid: int) -> tuple[float, int]:
    """utime + stime of every process whose session id or process group is `sid`, in seconds;
    and how many processes that was."""
    ticks, procs = 0, 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            text = Path(f"/proc/{d}/stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # comm (field 2) may hold spaces and parentheses: split after the last ')'.
        f = text.rsplit(")", 1)[1].split()
        # f[0] is field 3 (state): field n is f[n - 3].
        pgrp, session = int(f[2]), int(f[3])
        if session == sid or pgrp == sid:
            ticks += int(f[11]) + int(f[12])  # fields 14 utime, 15 stime
            procs += 1
    return ticks / CLK_TCK, procs


def server_stats(stats_url: str, model: str, timeout: float = 10.0) -> tuple[int, int]:
    """(inference_count, execution_count) from the statistics extension."""
    with urllib.request.urlopen(f"http://{stats_url}/v2/models/{model}/stats", timeout=timeout) as r:
        m = json.load(r)["model_stats"][0]
    return int(m.get("inference_count", 0)), int(m.get("execution_count", 0))


def sample(sid: int, stats_url: str, model: str) -> dict:
    inf, execs = server_stats(stats_url, model)
    cpu, procs = tree_cpu_seconds(sid)
    if procs == 0:
        raise OSError(f"no process has session or process group {sid}: is the server running under setsid?")
    return {"cpu_s": cpu, "procs": procs, "inference_count": inf, "execution_count": execs}


# Requests per measurement window. perf_analyzer 2.51 summarises a window in time quadratic in
# the requests it holds (InferenceProfiler::ValidLatencyMeasurement erases the window's records
# from the middle of one vector, one at a time, while its workers keep adding more): at about 8k
# requests/s, 3-second time windows take it longer to summarise than to fill, and it never
# finishes. Windows of a fixed request count keep that work small; 0 = time windows.
WINDOW_REQUESTS = int(os.environ.get("PA_WINDOW_REQUESTS", "4000"))
# Extra perf_analyzer flags, e.g. "--async --max-threads 2": few client threads keep its records
# nearly in time order, which keeps that summary cheap where count windows alone do not (REST at
# concurrency 64 against Osprey).
EXTRA = os.environ.get("PA_EXTRA", "").split()


def perf_analyzer_cmd(model, url, protocol, concurrency, interval_ms, csv_path, shape="input:64"):
    window = (["--measurement-mode", "count_windows", "--measurement-request-count", str(WINDOW_REQUESTS)]
              if WINDOW_REQUESTS > 0 else [])
    return [
        "bash", str(PERF_ANALYZER), "-m", model, "-u", url, "-i", protocol,
        "-b", "1", "--shape", shape, "--concurrency-range", f"{concurrency}:{concurrency}",
        "--measurement-interval", str(interval_ms), *window, *EXTRA, "--stability-percentage", "1000",
        "--max-trials", "3", "-f", str(csv_path),
    ]


def default_timeout(interval_ms: int) -> int:
    """At most 3 trials of interval_ms each, plus start-up: 4 intervals + 30 s; count windows
    of slow targets (a few hundred requests/s) take longer: at least 120 s then."""
    t = int(4 * interval_ms / 1000) + 30
    return max(t, 120) if WINDOW_REQUESTS > 0 else t


def run_bounded(cmd: list[str], timeout: float, log: Path) -> tuple[int | None, str]:
    """Runs cmd in its own process group; on timeout kills the group. (returncode, error)."""
    with log.open("wb") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return p.wait(timeout=timeout), ""
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            return None, f"perf_analyzer timed out after {timeout:.0f}s (killed)"


def measure(*, sid: int, stats_url: str, model: str, url: str, protocol: str, concurrency: int,
            interval_ms: int, csv_path: Path, timeout: float | None = None, shape: str = "input:64",
            stats_model: str | None = None, **labels) -> dict:
    """One perf_analyzer call between two samples of the server. Never raises for a failed run:
    the result carries `error`."""
    timeout = timeout or default_timeout(interval_ms)
    r = {**labels, "model": model, "transport": protocol, "concurrency": concurrency,
         "interval_ms": interval_ms, "error": ""}
    stats_model = stats_model or model
    try:
        before = sample(sid, stats_url, stats_model)
    except OSError as e:
        r["error"] = f"stats before the run: {e}"
        return r
    csv_path.unlink(missing_ok=True)
    log = csv_path.with_suffix(".log")
    t0 = time.monotonic()
    rc, err = run_bounded(perf_analyzer_cmd(model, url, protocol, concurrency, interval_ms, csv_path, shape),
                          timeout, log)
    r["wall_s"] = round(time.monotonic() - t0, 1)
    try:
        after = sample(sid, stats_url, stats_model)
    except OSError as e:
        after = None
        err = err or f"stats after the run: {e}"
    if rc not in (0, None) and not err:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        err = f"perf_analyzer exit {rc}: {' | '.join(tail)}"
    if after is not None:
        d_inf = after["inference_count"] - before["inference_count"]
        d_exec = after["execution_count"] - before["execution_count"]
        d_cpu = after["cpu_s"] - before["cpu_s"]
        r.update(server_inferences=d_inf, server_executions=d_exec, server_cpu_s=round(d_cpu, 3),
                 server_procs=after["procs"],
                 cpu_us_per_inference=d_cpu * 1e6 / d_inf if d_inf else None,
                 avg_batch=d_inf / d_exec if d_exec else None)
    if not err and csv_path.exists():
        with csv_path.open() as f:
            row = next(csv.DictReader(f), None)
        if row:
            r.update(throughput=float(row["Inferences/Second"]), p50_us=float(row["p50 latency"]),
                     p99_us=float(row["p99 latency"]))
        else:
            err = "perf_analyzer wrote an empty CSV"
    elif not err:
        err = "perf_analyzer wrote no CSV"
    r["error"] = err
    return r


# ---------------------------------------------------------------------------- tables

COLUMNS = [  # (key, header, format)
    ("target", "target", "{}"),
    ("transport", "transport", "{}"),
    ("concurrency", "concurrency", "{}"),
    ("throughput", "infer/s", "{:.0f}"),
    ("p50_us", "p50 µs", "{:.0f}"),
    ("p99_us", "p99 µs", "{:.0f}"),
    ("cpu_us_per_inference", "server CPU µs/inference", "{:.1f}"),
    ("avg_batch", "avg batch", "{:.2f}"),
]


def cell(r: dict, key: str, fmt: str) -> str:
    v = r.get(key)
    if v is None or v == "":
        return "-"
    return fmt.format(v)


def rows_text(results: list[dict], columns=COLUMNS) -> tuple[list[str], list[list[str]]]:
    headers = [h for _, h, _ in columns] + ["error"]
    rows = [[cell(r, k, f) for k, _, f in columns] + [r.get("error") or ""] for r in results]
    return headers, rows


def print_table(results: list[dict], columns=COLUMNS, file=sys.stdout) -> None:
    headers, rows = rows_text(results, columns)
    if not any(r[-1] for r in rows):
        headers, rows = headers[:-1], [r[:-1] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w) if i < 2 or i >= len(columns) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(headers), file=file)
    for r in rows:
        print(line(r), file=file)


def markdown_table(results: list[dict], columns=COLUMNS) -> str:
    headers, rows = rows_text(results, columns)
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def write_csv(results: list[dict], path: Path, columns=COLUMNS) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([k for k, _, _ in columns] + ["error"])
        for r in results:
            w.writerow([r.get(k, "") if r.get(k) is not None else "" for k, _, _ in columns] + [r.get("error", "")])


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def ratio_lines(results: list[dict], num: str, den: str, key: str = "target",
                group=("transport", "concurrency")) -> list[str]:
    """`num/den` ratios of throughput, p50 and CPU per inference for every group present in both."""
    by = {}
    for r in results:
        if r.get("error"):
            continue
        by[(r[key],) + tuple(r[g] for g in group)] = r
    lines = []
    seen = []
    for r in results:
        g = tuple(r[x] for x in group)
        if g in seen:
            continue
        seen.append(g)
        a, b = by.get((num,) + g), by.get((den,) + g)
        label = " ".join(f"{x}={v}" for x, v in zip(group, g))
        if a is None or b is None:
            lines.append(f"{num}/{den} {label}: - (a run is missing or failed)")
            continue
        lines.append(
            f"{num}/{den} {label}: throughput {ratio(a.get('throughput'), b.get('throughput'))}x, "
            f"p50 {ratio(a.get('p50_us'), b.get('p50_us'))}x, "
            f"CPU/inference {ratio(a.get('cpu_us_per_inference'), b.get('cpu_us_per_inference'))}x")
    return lines


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------- CLI


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="one perf_analyzer call; appends a JSON line to --out")
    run.add_argument("--sid", type=int, required=True, help="the server's session id (its pid under setsid)")
    run.add_argument("--stats-url", required=True, help="host:port of the server's REST endpoint")
    run.add_argument("--model", required=True)
    run.add_argument("--url", required=True)
    run.add_argument("--protocol", choices=["grpc", "http"], required=True)
    run.add_argument("--concurrency", type=int, required=True)
    run.add_argument("--interval-ms", type=int, required=True)
    run.add_argument("--timeout", type=float, help="seconds; default 4 intervals + 30")
    run.add_argument("--shape", default="input:64")
    run.add_argument("--csv", type=Path, required=True, help="perf_analyzer's -f file")
    run.add_argument("--target", required=True)
    run.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("report", help="table, CSV, markdown and ratio lines from JSON lines")
    rep.add_argument("--ratio", action="append", default=[], help="NUM/DEN targets, e.g. osprey/triton")
    rep.add_argument("--csv", type=Path)
    rep.add_argument("--md", type=Path)
    rep.add_argument("--title", default="perf_analyzer")
    rep.add_argument("results", type=Path)
    a = ap.parse_args()

    if a.cmd == "run":
        r = measure(sid=a.sid, stats_url=a.stats_url, model=a.model, url=a.url, protocol=a.protocol,
                    concurrency=a.concurrency, interval_ms=a.interval_ms, csv_path=a.csv,
                    timeout=a.timeout, shape=a.shape, target=a.target)
        with a.out.open("a") as f:
            f.write(json.dumps(r) + "\n")
        print_table([r])
        return 0 if not r["error"] else 2

    results = load_jsonl(a.results)
    print_table(results)
    lines = []
    for spec in a.ratio:
        num, den = spec.split("/")
        lines += ratio_lines(results, num, den)
    if lines:
        print()
        print("\n".join(lines))
    if a.csv:
        write_csv(results, a.csv)
    if a.md:
        text = f"# {a.title}\n\n" + markdown_table(results)
        if lines:
            text += "\n" + "\n".join(f"- {x}" for x in lines) + "\n"
        a.md.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
