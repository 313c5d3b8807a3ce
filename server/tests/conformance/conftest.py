"""Session fixture: run the osprey binary against <repo>/models on free ports.

Environment:
  OSPREY_BIN   path of the server binary (default <repo>/target/debug/osprey)
  OSPREY_MODELS  model repository (default <repo>/models)
"""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("OSPREY_MODELS", REPO / "models"))
BIN = Path(os.environ.get("OSPREY_BIN", REPO / "target" / "debug" / "osprey"))

READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
LISTEN = re.compile(r"\b(HTTP|gRPC|metrics) service listening on (\S+?):(\d+)\b")


class OspreyServer:
    def __init__(self, proc):
        self.proc = proc
        self.log = []  # stripped stderr lines
        self.ports = {}
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\n")
            with self._cond:
                self.log.append(line)
                m = LISTEN.search(line)
                if m:
                    self.ports[m.group(1)] = f"{m.group(2)}:{m.group(3)}"
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def log_text(self):
        with self._cond:
            return "\n".join(self.log)

    def wait_ports(self, deadline):
        with self._cond:
            while len(self.ports) < 3:
                if self._eof or self.proc.poll() is not None:
                    raise RuntimeError(
                        f"osprey exited (code {self.proc.poll()}) before listening:\n"
                        + "\n".join(self.log)
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        "osprey did not report its three ports in time:\n" + "\n".join(self.log)
                    )
                self._cond.wait(min(left, 0.5))

    @property
    def http_url(self):
        return self.ports["HTTP"]

    @property
    def grpc_url(self):
        return self.ports["gRPC"]

    @property
    def metrics_url(self):
        return self.ports["metrics"]

    def wait_ready(self, deadline):
        url = f"http://{self.http_url}/v2/health/ready"
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"osprey exited (code {self.proc.returncode}) before ready:\n" + self.log_text()
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
                    last = r.status
            except urllib.error.HTTPError as e:
                last = e.code
            except OSError as e:
                last = e
            time.sleep(0.1)  # bounded polling interval
        raise TimeoutError(f"osprey not ready after {READY_TIMEOUT_S}s (last: {last}):\n" + self.log_text())


def _reference_models():
    return sorted(p.parent.name for p in MODELS.glob("*/reference.json"))


@pytest.fixture(scope="session")
def model_repository():
    return MODELS


@pytest.fixture(scope="session")
def references():
    """{model name: parsed reference.json}"""
    out = {}
    for name in _reference_models():
        with open(MODELS / name / "reference.json") as f:
            out[name] = json.load(f)
    return out


@pytest.fixture(scope="session")
def server(request):
    if not BIN.exists():
        pytest.fail(f"server binary {BIN} missing (cargo build -p osprey-server --bin osprey)")
    if not MODELS.is_dir():
        pytest.fail(f"model repository {MODELS} missing")
    env = dict(os.environ, NO_COLOR="1")
    env.pop("RUST_LOG", None)
    proc = subprocess.Popen(
        [
            str(BIN), "serve",
            "--model-repository", str(MODELS),
            "--address", "127.0.0.1",
            "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0",
            "--log-format", "text",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    srv = OspreyServer(proc)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        srv.wait_ports(deadline)
        srv.wait_ready(deadline)
    except BaseException:
        proc.kill()
        proc.wait()
        raise

    yield srv

    if proc.poll() is not None:
        pytest.fail(f"osprey died during the session (code {proc.returncode}):\n" + srv.log_text())
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"osprey did not exit within {EXIT_TIMEOUT_S}s of SIGTERM:\n" + srv.log_text())
    srv._reader.join(timeout=5)
    assert code == 0, f"osprey exited with code {code} after SIGTERM:\n" + srv.log_text()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server log to failing tests."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        srv = item.funcargs.get("server") if hasattr(item, "funcargs") else None
        if isinstance(srv, OspreyServer):
            tail = "\n".join(srv.log_text().splitlines()[-60:])
            rep.sections.append(("osprey server log (tail)", tail))
