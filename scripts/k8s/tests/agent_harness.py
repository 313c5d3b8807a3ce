"""Helpers for the test node agent's tests: polling with deadlines and the agent as a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

K8S = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if K8S not in sys.path:
    sys.path.insert(0, K8S)

from node_agent.api import ApiError  # noqa: E402
from node_agent.netns import kill_netns_pids  # noqa: E402

BRIDGE = "ospt-br0"
CIDR = "10.245.0.0/16"
NODE = "osprey-test-node"


def wait_for(fn, timeout: float, what: str, interval: float = 0.1):
    """Polls fn() until it returns a truthy value; fails with `what` (and the last value) after
    timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except ApiError as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


LOCK = "/run/lock/osprey-node-agent-tests.lock"


class HostLock:
    """Serializes test runs on one host: they share bridge names and pod CIDRs. Bounded wait."""

    def __init__(self, timeout: float = 600):
        import fcntl

        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        self.f = open(LOCK, "w")

        def take():
            try:
                fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        wait_for(take, timeout, f"{LOCK} (another node agent test run holds it)", interval=0.5)

    def release(self) -> None:
        self.f.close()


def cleanup_network(bridge: str) -> None:
    """Removes whatever an agent on `bridge` may have left (the agent does this itself; this is
    the safety net for a crashed one)."""
    try:
        names = [n for n in os.listdir("/run/netns") if n.startswith(bridge + "-")]
    except FileNotFoundError:
        names = []
    for n in names:
        kill_netns_pids(n)
        subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=20)


class AgentProcess:
    def __init__(self, env_file: str, state_dir: str, bridge: str, cidr: str, node: str, extra: list[str] = (),
                 clean_first: bool = True):
        self.state_dir = state_dir
        self.bridge = bridge
        self.log_path = os.path.join(os.path.dirname(state_dir), f"agent-{node}.log")
        if clean_first:
            cleanup_network(bridge)
        cmd = [
            sys.executable, os.path.join(K8S, "node-agent.py"),
            "--env-file", env_file, "--node", node, "--state-dir", state_dir,
            "--bridge", bridge, "--pod-cidr", cidr,
            "--backoff-base", "1", "--backoff-max", "4", "--lease-interval", "2", "--status-interval", "10",
            "--hosts-interval", "0.5", *extra,
        ]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        ready = os.path.join(state_dir, "ready")
        try:
            wait_for(lambda: os.path.exists(ready) or self.proc.poll() is not None, 60, f"agent {node} to start")
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}:\n{self.tail()}")
        except BaseException:
            self.stop()
            raise

    def tail(self, n: int = 40) -> str:
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def stop(self, timeout: float = 40) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()
        cleanup_network(self.bridge)
        return self.proc.returncode


def full_cluster(directory, bridge: str, cidr: str, node: str, osprey: str, agent_args: list[str],
                 extra_sans: str = ""):
    """Generator for a module fixture: the full control plane (start-cluster.sh) in `directory`
    and a node agent on `bridge`/`cidr`; yields (directory, agent) and stops both. Skips without
    root, iproute2, nsenter or the osprey binary."""
    import pytest

    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nsenter") is None:
        pytest.skip("the node agent needs root, iproute2 and nsenter")
    if not os.access(osprey, os.X_OK):
        pytest.skip(f"no osprey binary at {osprey} (cargo build, or OSPREY_BIN)")
    env = {**os.environ, "OSPREY_K8S_OWNER_PID": str(os.getpid())}
    if extra_sans:
        env["OSPREY_K8S_EXTRA_SANS"] = extra_sans
    res = subprocess.run([os.path.join(K8S, "start-cluster.sh"), str(directory)], env=env, capture_output=True,
                         text=True, timeout=1800)
    if res.returncode != 0:
        pytest.fail(f"start-cluster.sh failed:\n{res.stderr[-3000:]}")
    lock = HostLock()
    agent = None
    try:
        agent = AgentProcess(os.path.join(directory, "env"), os.path.join(directory, "agent-state"), bridge, cidr,
                             node, extra=agent_args)
        yield str(directory), agent
    finally:
        if agent is not None:
            print(f"agent exited {agent.stop()}; log tail:\n{agent.tail(20)}")
        lock.release()
        subprocess.run([os.path.join(K8S, "stop-cluster.sh"), str(directory)], capture_output=True, timeout=120)
