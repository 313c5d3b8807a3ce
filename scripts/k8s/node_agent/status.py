"""Pod status as a kubelet reports it: phase, conditions, pod IPs, container statuses."""

from __future__ import annotations

import time


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def phase(pod_spec: dict, init_failed: bool, init_done: bool, containers: list) -> str:
    """containers: the main containers' ContainerState objects."""
    policy = pod_spec.get("restartPolicy", "Always")
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    if any(c.runs == 0 and c.terminated is None for c in containers):
        return "Pending"
    if any(c.process is not None for c in containers):
        return "Running"
    finished = [c for c in containers if c.terminated is not None and not c.will_restart(policy)]
    if len(finished) == len(containers):
        if any(c.terminated.get("exitCode", 0) != 0 for c in containers):
            return "Failed"
        return "Succeeded"
    return "Running"


class Conditions:
    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def set(self, kind: str, ok: bool, reason: str = "", message: str = "") -> None:
        status = "True" if ok else "False"
        cur = self.items.get(kind)
        if cur is None or cur["status"] != status or cur.get("reason", "") != reason:
            entry = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": now_iso()}
            if cur is not None and cur["status"] == status:
                entry["lastTransitionTime"] = cur["lastTransitionTime"]
            if reason:
                entry["reason"] = reason
            if message:
                entry["message"] = message
            self.items[kind] = entry

    def list(self) -> list[dict]:
        order = ["Initialized", "Ready", "ContainersReady", "PodScheduled"]
        return [self.items[k] for k in order if k in self.items]
