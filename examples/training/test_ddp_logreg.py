"""Tests of ddp_logreg.py: real processes on loopback, PyTorch and TF_CONFIG environments,
the ps task, crash injection and the rendezvous timeout. Run:
`.venv/bin/python -m pytest examples/training -q`."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "ddp_logreg.py")
TIMEOUT = 60
FINAL = re.compile(r"^final rank=(\d+) world=(\d+) loss=([0-9.]+) weights_sha256=([0-9a-f]{64})$", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start(env: dict, *args: str, script: str = SCRIPT) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, script, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    out = []
    try:
        for p in procs:
            text, _ = p.communicate(timeout=TIMEOUT)
            out.append((p.returncode, text))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


def run(env: dict, *args: str, script: str = SCRIPT) -> tuple[int, str]:
    return finish([start(env, *args, script=script)])[0]


def check_trained(results: list[tuple[int, str]], world: int) -> None:
    digests = set()
    for rank, (code, text) in enumerate(results):
        assert code == 0, text
        m = FINAL.search(text)
        assert m, text
        assert (int(m[1]), int(m[2])) == (rank, world)
        assert float(m[3]) < 0.4
        assert f"rank={rank} step=50 loss=" in text
        digests.add(m[4])
    assert len(digests) == 1
    assert "weights identical on all" in results[0][1]


def test_world_3_pytorch_env():
    port = free_port()
    procs = [start(base_env(RANK=r, WORLD_SIZE=3, MASTER_ADDR="127.0.0.1", MASTER_PORT=port)) for r in (2, 1, 0)]
    results = finish(procs)[::-1]
    check_trained(results, 3)
    assert f"coordinator=127.0.0.1:{port} source=pytorch" in results[1][1]


def tf_config(port: int, kind: str, index: int) -> str:
    cluster = {"chief": [f"localhost:{port}"], "worker": ["localhost:1", "localhost:2"], "ps": ["localhost:3"]}
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}, "environment": "cloud"})


def test_tf_config_chief_and_two_workers_through_the_mnist_stand_in():
    port = free_port()
    tasks = [("chief", 0), ("worker", 0), ("worker", 1)]
    procs = [start(base_env(TF_CONFIG=tf_config(port, k, i)), "--epochs=1", "--batch-size=64", script=os.path.join(HERE, "mnist.py")) for k, i in tasks]
    results = finish(procs)
    check_trained(results, 3)
    assert "source=TF_CONFIG" in results[2][1] and "ignoring unknown arguments: --batch-size=64" in results[2][1]


def test_ps_task_exits_without_training():
    code, text = run(base_env(TF_CONFIG=tf_config(free_port(), "ps", 0)))
    assert code == 0, text
    assert "not a training participant" in text and "step=" not in text


def test_crash_once_with_marker(tmp_path):
    marker = tmp_path / "crashed"
    args = ("--crash-exit", "7", "--crash-rank", "0", "--crash-marker", str(marker), "--steps", "100")
    code, text = run(base_env(), *args)
    assert code == 7 and "crashing with exit code 7 (rank 0)" in text and marker.exists()
    code, text = run(base_env(), *args)
    assert code == 0 and "crashing" not in text and FINAL.search(text), text


def test_crash_rank_exit_code_every_time_without_marker():
    for _ in range(2):
        code, text = run(base_env(RANK=1, WORLD_SIZE=2, MASTER_PORT=free_port()), "--crash-exit", "42", "--crash-rank", "1")
        assert code == 42 and "crashing with exit code 42 (rank 1)" in text
    code, text = run(base_env(), "--crash-exit", "42", "--crash-rank", "1", "--steps", "100")  # rank 0: not the one
    assert code == 0, text


@pytest.mark.parametrize("addr", ["127.0.0.1", "no-such-coordinator.invalid"])
def test_rendezvous_timeout_exits_3(addr):
    code, text = run(base_env(RANK=1, WORLD_SIZE=2, MASTER_ADDR=addr, MASTER_PORT=free_port()), "--rendezvous-timeout", "1")
    assert code == 3, text
    assert "rendezvous timed out" in text
