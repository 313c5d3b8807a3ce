"""One run of one container: a process in its own session (so the whole process group can be
signalled), started through launch.py inside the pod's namespaces, output appended to
<state>/<ns>_<pod>/<container>.log (the previous run's log is kept as <container>.log.1)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch.py")


class StartError(Exception):
    """The process could not be started (launcher failure); the message says why."""


def rotate_log(path: str) -> None:
    if os.path.exists(path) and os.path.getsize(path) > 0:
        os.replace(path, path + ".1")


class Process:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pid = proc.pid
        self.container_id = "osprey-agent://" + uuid.uuid4().hex
        self.exit_code: int | None = None
        self.kill_deadline: float | None = None

    def exited(self) -> bool:
        """True once the main process has exited. Before reaping it (the zombie keeps its PID,
        hence the process group ID, from being reused) the rest of the group is SIGKILLed: a
        container ends when its main process does."""
        if self.exit_code is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            info = True  # already reaped
        if info is None:
            return False
        self.signal_group(signal.SIGKILL)
        rc = self.proc.wait()
        self.exit_code = rc if rc >= 0 else 128 - rc
        return True

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self, grace: float) -> None:
        """SIGTERM now; kill_due() sends SIGKILL after the grace period."""
        if self.kill_deadline is None:
            self.signal_group(signal.SIGTERM)
            self.kill_deadline = time.monotonic() + max(0.0, grace)

    def kill_due(self) -> None:
        if self.kill_deadline is not None and time.monotonic() >= self.kill_deadline:
            self.signal_group(signal.SIGKILL)


def start(
    *,
    log_path: str,
    netns: str,
    hostname: str,
    mounts: list[dict],
    working_dir: str,
    program: str,
    argv: list[str],
    env: dict[str, str],
    spec_dir: str,
) -> Process:
    rotate_log(log_path)
    r, w = os.pipe()
    spec_path = os.path.join(spec_dir, f".launch-{uuid.uuid4().hex}.json")
    fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "netns": netns,
                "hostname": hostname,
                "mounts": mounts,
                "workingDir": working_dir,
                "program": program,
                "argv": argv,
                "env": env,
                "errfd": w,
            },
            f,
        )
    try:
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen(
                [sys.executable, "-I", LAUNCHER, spec_path],
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(w,),
                cwd="/",
                env={"PATH": os.environ.get("PATH", os.defpath)},
            )
    except OSError as e:
        os.close(r)
        os.close(w)
        if os.path.exists(spec_path):
            os.unlink(spec_path)
        raise StartError(str(e)) from e
    os.close(w)
    # EOF on r = execve succeeded (the pipe is close-on-exec); data = the launcher's error.
    msg = b""
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([r], [], [], 0.5)
            if ready:
                chunk = os.read(r, 4096)
                if not chunk:
                    break
                msg += chunk
    finally:
        os.close(r)
    p = Process(proc)
    if msg:
        p.exited()
        with open(log_path, "ab") as logf:
            logf.write(b"osprey node agent: container failed to start: " + msg + b"\n")
        raise StartError(msg.decode("utf-8", "replace"))
    return p
