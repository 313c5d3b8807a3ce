"""Readiness, liveness and startup probes: httpGet (to the pod IP), tcpSocket, exec (inside the
container's namespaces via nsenter), with the kubelet's timing fields and thresholds."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time


def _port(port, container: dict) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown port {port!r}")


def run_probe(probe: dict, container: dict, pod_ip: str, pid: int | None, env: dict[str, str]) -> tuple[bool, str]:
    """One attempt: (success, message)."""
    timeout = max(1, int(probe.get("timeoutSeconds", 1)))
    try:
        if "httpGet" in probe:
            h = probe["httpGet"]
            host = h.get("host") or pod_ip
            port = _port(h.get("port"), container)
            path = h.get("path") or "/"
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.20")
            if (h.get("scheme") or "HTTP").upper() == "HTTPS":
                import ssl

                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, port, timeout=timeout, context=ssl._create_unverified_context()
                )
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", path, headers=headers)
                status = conn.getresponse().status
            finally:
                conn.close()
            return 200 <= status < 400, f"HTTP probe failed with statuscode: {status}"
        if "tcpSocket" in probe:
            t = probe["tcpSocket"]
            with socket.create_connection((t.get("host") or pod_ip, _port(t.get("port"), container)), timeout=timeout):
                return True, ""
        if "exec" in probe:
            cmd = probe["exec"].get("command") or []
            if pid is None:
                return False, "container not running"
            res = subprocess.run(
                ["nsenter", "-t", str(pid), "-m", "-n", "-u", "--", *cmd],
                env=env,
                capture_output=True,
                timeout=timeout,
            )
            out = (res.stdout + res.stderr).decode("utf-8", "replace")[-500:]
            return res.returncode == 0, f"exec probe exited {res.returncode}: {out}"
        return False, "probe has no handler"
    except subprocess.TimeoutExpired:
        return False, f"command timed out after {timeout}s"
    except (OSError, ValueError, http.client.HTTPException) as e:
        return False, f"probe failed: {e}"


class ProbeState:
    """One probe of one container run: when it is due and what it concluded."""

    def __init__(self, probe: dict, started: float, initial: bool):
        self.probe = probe
        self.period = max(1, int(probe.get("periodSeconds", 10)))
        self.success_threshold = max(1, int(probe.get("successThreshold", 1)))
        self.failure_threshold = max(1, int(probe.get("failureThreshold", 3)))
        self.next_at = started + int(probe.get("initialDelaySeconds", 0))
        self.successes = 0
        self.failures = 0
        self.result = initial  # readiness starts False, liveness True, startup False
        self.message = ""

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, message: str, now: float) -> None:
        self.next_at = now + self.period
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= self.success_threshold:
                self.result = True
        else:
            self.failures += 1
            self.successes = 0
            self.message = message
            if self.failures >= self.failure_threshold:
                self.result = False


def now() -> float:
    return time.monotonic()
