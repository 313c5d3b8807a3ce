"""A pod worker: one thread per pod bound to this agent's node. Creates the sandbox (network
namespace, volumes, /etc/hosts), runs init containers then containers with restarts and probes,
reports status, and on deletion stops the processes and deletes the API object."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
import time
from typing import TYPE_CHECKING

from . import apiaccess, hosts, runner, volumes
from .api import ApiError
from .envs import ConfigError, Lookup, build_env, expand
from .images import ImageError, ProgramNotFound
from .probes import ProbeState, run_probe
from .status import Conditions, now_iso, phase

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("node_agent.pod")
TICK = 0.2
# What the kubelet keeps of a termination message, and where it is by default.
TERMINATION_MESSAGE_LIMIT = 4096
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


def read_termination_message(path: str | None) -> str:
    """A container's termination message file (at most TERMINATION_MESSAGE_LIMIT bytes, as the
    kubelet keeps), "" when there is none."""
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            data = f.read(TERMINATION_MESSAGE_LIMIT)
    except OSError:
        return ""
    return data.decode(errors="replace")


def log_tail(path: str, lines: int = 80, limit: int = 2048) -> str:
    """The last `lines` lines of a container log, at most `limit` bytes (the kubelet's
    FallbackToLogsOnError bounds)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class ContainerState:
    def __init__(self, spec: dict, is_init: bool):
        self.spec = spec
        self.name = spec["name"]
        self.is_init = is_init
        self.runs = 0
        self.restart_count = 0
        self.process: runner.Process | None = None
        self.started_at = ""
        self.terminated: dict | None = None  # latest termination
        self.previous: dict | None = None  # the one before (lastState of a terminated container)
        self.pending_restart = False
        self.waiting: tuple[str, str] | None = None
        self.next_start = 0.0
        self.crashes = 0
        self.probes: dict[str, ProbeState] = {}
        self.env: dict[str, str] = {}
        self.image_id = ""
        self.started = False
        self.ready = False
        self.probe_kill = ""  # why the agent is killing it (liveness/startup)
        self.termination_file: str | None = None  # host file behind terminationMessagePath

    def will_restart(self, policy: str) -> bool:
        if self.terminated is None:
            return False
        if self.probe_kill and policy != "Never":
            return True
        code = self.terminated.get("exitCode", 0)
        if self.is_init:
            return policy != "Never" and code != 0
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def status(self, default_wait: str) -> dict:
        out: dict = {
            "name": self.name,
            "image": self.spec.get("image", ""),
            "imageID": self.image_id,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.started if self.process else False,
            "lastState": {},
        }
        if self.process is not None:
            out["state"] = {"running": {"startedAt": self.started_at}}
            out["containerID"] = self.process.container_id
            if self.terminated:
                out["lastState"] = {"terminated": self.terminated}
        elif self.terminated is not None and not self.pending_restart:
            out["state"] = {"terminated": self.terminated}
            if self.terminated.get("containerID"):
                out["containerID"] = self.terminated["containerID"]
            if self.previous:
                out["lastState"] = {"terminated": self.previous}
        else:
            reason, message = self.waiting or (default_wait, "")
            out["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
            if self.terminated:
                out["lastState"] = {"terminated": self.terminated}
        if self.is_init:
            out.pop("started")
        return out


class PodWorker(threading.Thread):
    def __init__(self, agent: "Agent", node: str, pod: dict):
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.agent = agent
        self.node = node
        self.pod = pod
        self.uid = meta["uid"]
        self.ns = meta["namespace"]
        self.pod_name = meta["name"]
        self.key = f"{self.ns}/{self.pod_name}"
        self.event = threading.Event()
        self.lock = threading.Lock()
        self.api_deleted = False
        self.stopping = False  # agent shutdown
        self.done = False
        spec = pod["spec"]
        self.policy = spec.get("restartPolicy", "Always")
        self.inits = [ContainerState(c, True) for c in spec.get("initContainers") or []]
        self.containers = [ContainerState(c, False) for c in spec.get("containers") or []]
        self.init_index = 0
        self.init_failed = False
        self.log_dir = os.path.join(agent.state_dir, f"{self.ns}_{self.pod_name}")
        self.run_dir = os.path.join(agent.state_dir, "pods", self.uid)
        self.hosts_path = os.path.join(self.run_dir, "hosts")
        self.hosts_lock = threading.Lock()  # the worker and the agent's refresher both write it
        self.netns: str | None = None
        self.pod_ip = ""
        self.volume_paths: dict[str, str] | None = None
        self.sandbox_error = ""
        self.sandbox_retry = 0.0
        self.sandbox_gone = False  # torn down after the pod finished
        self.start_time = now_iso()
        self.conditions = Conditions()
        self.last_status: dict | None = None
        self.terminal = False

    # --- called from the watch thread ---

    def update(self, pod: dict) -> None:
        with self.lock:
            self.pod = pod
        self.event.set()

    def deleted(self) -> None:
        self.api_deleted = True
        self.event.set()

    def shutdown(self) -> None:
        self.stopping = True
        self.event.set()

    # --- the worker ---

    def run(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - a worker must never take the agent down
            log.exception("pod %s: worker failed", self.key)
            self._stop_processes(0)
            self._teardown()
        finally:
            self.done = True

    def _run(self) -> None:
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.run_dir, exist_ok=True)
        while True:
            with self.lock:
                pod = self.pod
            if self.api_deleted or self.stopping:
                self._stop_processes(0 if self.api_deleted else min(2.0, self._grace(pod)))
                self._teardown()
                return
            if pod["metadata"].get("deletionTimestamp"):
                self._stop_processes(self._grace(pod))
                self._teardown()
                self._delete_api_object()
                return
            if not self.terminal:
                self._step(pod)
            self._report(pod)
            self.event.wait(TICK)
            self.event.clear()

    def _grace(self, pod: dict) -> float:
        meta, spec = pod["metadata"], pod["spec"]
        g = meta.get("deletionGracePeriodSeconds")
        if g is None:
            g = spec.get("terminationGracePeriodSeconds", 30)
        return float(g)

    # --- sandbox ---

    def _sandbox(self, pod: dict) -> bool:
        if self.netns is not None:
            return True
        if time.monotonic() < self.sandbox_retry:
            return False
        try:
            if self.volume_paths is None:
                paths = volumes.prepare(
                    self.agent.api, pod, self.run_dir, self.agent.state_dir, self.agent.allocatable
                )
                if self.agent.api_access and apiaccess.wants_token(self.agent.api, pod):
                    dest = os.path.join(self.run_dir, "volumes", apiaccess.VOLUME)
                    os.makedirs(dest, exist_ok=True)
                    for name, data in apiaccess.credentials(self.agent.api, pod, self.agent.ca_file).items():
                        with open(os.path.join(dest, name), "wb") as f:
                            f.write(data)
                    paths[apiaccess.VOLUME] = dest
                self.volume_paths = paths
            view = self.agent.namespace_view(self.ns)
            netns, pod_ip = self.agent.network.create_pod(self.uid)
            try:
                with open(os.path.join(self.run_dir, "hostname"), "w") as f:
                    f.write(self.hostname(pod) + "\n")
                # No DNS: a name that is not in /etc/hosts fails at once (nothing listens on the
                # pod's own loopback) instead of timing out against the host's resolver.
                with open(os.path.join(self.run_dir, "resolv.conf"), "w") as f:
                    f.write(
                        "# osprey test node agent: no DNS server; names come from /etc/hosts\n"
                        f"nameserver 127.0.0.1\nsearch {self.ns}.svc.cluster.local svc.cluster.local cluster.local\n"
                        "options attempts:1 timeout:1\n"
                    )
                self.netns, self.pod_ip = netns, pod_ip
                self.refresh_hosts(*view)
            except OSError:
                self.netns = None
                self.agent.network.delete_pod(netns, self.uid)
                self.agent.network.release(pod_ip)
                raise
            spec = pod["spec"]
            self.sandbox_error = ""
            log.info("pod %s: sandbox %s ip %s (subdomain %s)", self.key, self.netns, self.pod_ip, spec.get("subdomain"))
            return True
        except (ConfigError, ApiError, OSError, RuntimeError) as e:
            self.sandbox_error = str(e)
            self.sandbox_retry = time.monotonic() + 2
            log.warning("pod %s: sandbox not ready: %s", self.key, e)
            return False

    @staticmethod
    def hostname(pod: dict) -> str:
        return (pod["spec"].get("hostname") or pod["metadata"]["name"])[:63]

    def refresh_hosts(self, services: list, endpoints: dict, pods: list) -> None:
        if self.netns is None:
            return
        with self.lock:
            pod = self.pod
        with self.hosts_lock:
            if self.netns is not None:
                hosts.write_in_place(self.hosts_path, hosts.render(pod, self.pod_ip, services, endpoints, pods))

    def _teardown(self) -> None:
        if self.netns is not None:
            self.agent.network.delete_pod(self.netns, self.uid)
            self.agent.network.release(self.pod_ip)
            self.netns = None
        self.agent.mount_points.release(self.uid)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # --- containers ---

    def _view(self, pod: dict) -> dict:
        """The pod with the status fields the agent knows (for fieldRefs)."""
        view = copy.deepcopy(pod)
        st = view.setdefault("status", {})
        st["podIP"] = self.pod_ip
        st["podIPs"] = [{"ip": self.pod_ip}] if self.pod_ip else []
        st["hostIP"] = self.agent.host_ip
        return view

    def _start(self, pod: dict, c: ContainerState) -> None:
        spec = c.spec
        image = spec.get("image", "")
        c.runs += 1
        try:
            base = self.agent.base_env(self.hostname(pod))
            prefix = self.agent.images.path_prefix(pod["metadata"].get("labels"))
            if prefix:
                base["PATH"] = ":".join([*prefix, base["PATH"]])
            env = build_env(self._view(pod), spec, Lookup(self.agent.api, self.ns), base, self.agent.allocatable)
            command = [expand(x, env) for x in spec.get("command") or []]
            args = [expand(x, env) for x in spec.get("args") or []]
            assert self.volume_paths is not None and self.netns is not None
            volume_mounts = sorted(volumes.container_mounts(spec, self.volume_paths, volumes.read_only_volumes(pod)), key=lambda m: m["target"].count("/"))
            resolved = self.agent.images.resolve(image, command, args, volume_mounts)
            c.image_id = "osprey-agent-program://" + resolved.program
            # The image's files first (they stand for its root filesystem), volumes over them.
            mounts = list(resolved.files) + volume_mounts
            if apiaccess.VOLUME in self.volume_paths:
                mounts.append({"source": self.volume_paths[apiaccess.VOLUME], "target": apiaccess.MOUNT, "readOnly": True})
            mounts.append({"source": self.hosts_path, "target": "/etc/hosts", "readOnly": False})
            if os.path.exists("/etc/resolv.conf"):
                mounts.append({"source": os.path.join(self.run_dir, "resolv.conf"), "target": "/etc/resolv.conf", "readOnly": False})
            if os.path.exists("/etc/hostname"):
                mounts.append({"source": os.path.join(self.run_dir, "hostname"), "target": "/etc/hostname", "readOnly": False})
            for m in mounts:
                self.agent.mount_points.ensure(self.uid, m["target"], os.path.isdir(m["source"]))
            term = self._termination_mount(c)
            if term is not None:
                mounts.append(term)
            wd = spec.get("workingDir") or "/"
            if not os.path.isdir(wd):
                self.agent.mount_points.ensure(self.uid, wd, True)
            c.env = env
            proc = runner.start(
                log_path=os.path.join(self.log_dir, f"{c.name}.log"),
                netns=self.netns,
                hostname=self.hostname(pod),
                mounts=mounts,
                working_dir=wd,
                program=resolved.program,
                argv=resolved.exec_argv,
                env=env,
                spec_dir=self.run_dir,
            )
        except ConfigError as e:
            c.runs -= 1
            self._wait_retry(c, "CreateContainerConfigError", str(e))
            return
        except ImageError as e:
            c.runs -= 1
            self._wait_retry(c, "CreateContainerError", str(e))
            return
        except (ProgramNotFound, runner.StartError) as e:
            t = now_iso()
            self._log_line(c, f"container failed to start: {e}")
            self._exited(c, {"exitCode": 128, "reason": "StartError", "message": str(e), "startedAt": t, "finishedAt": t})
            return
        except (ApiError, OSError) as e:
            c.runs -= 1
            self._wait_retry(c, "CreateContainerError", str(e))
            return
        c.process = proc
        c.started_at = now_iso()
        c.waiting = None
        c.pending_restart = False
        c.probe_kill = ""
        started = time.monotonic()
        c.probes = {}
        for kind, initial in (("startupProbe", False), ("livenessProbe", True), ("readinessProbe", False)):
            if spec.get(kind):
                c.probes[kind] = ProbeState(spec[kind], started, initial)
        c.started = "startupProbe" not in c.probes
        c.ready = False
        log.info("pod %s: container %s started (pid %d)", self.key, c.name, proc.pid)

    def _termination_mount(self, c: ContainerState) -> dict | None:
        """As the kubelet: a fresh empty host file per container run, bind-mounted at the
        container's terminationMessagePath (default /dev/termination-log); read back when the
        container exits. None (no termination message) when the mount point cannot be made."""
        target = c.spec.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH
        host = os.path.join(self.run_dir, "termination", f"{c.name}.{c.runs}")
        try:
            os.makedirs(os.path.dirname(host), exist_ok=True)
            with open(host, "wb"):
                pass
            os.chmod(host, 0o666)
            self.agent.mount_points.ensure(self.uid, target, False)
        except OSError as e:
            log.warning("pod %s: container %s: no termination message file at %s: %s", self.key, c.name, target, e)
            c.termination_file = None
            return None
        c.termination_file = host
        return {"source": host, "target": os.path.normpath(target), "readOnly": False}

    def _log_line(self, c: ContainerState, text: str) -> None:
        path = os.path.join(self.log_dir, f"{c.name}.log")
        if not os.path.exists(path) or os.path.getsize(path) > 0:
            runner.rotate_log(path)
        with open(path, "a") as f:
            f.write(f"osprey node agent: {text}\n")

    def _wait_retry(self, c: ContainerState, reason: str, message: str) -> None:
        c.waiting = (reason, message)
        c.next_start = time.monotonic() + self._backoff(c)
        c.crashes += 1
        log.warning("pod %s: container %s: %s: %s", self.key, c.name, reason, message)

    def _backoff(self, c: ContainerState) -> float:
        if c.crashes == 0:
            return 0.0
        return min(self.agent.backoff_max, self.agent.backoff_base * 2 ** (c.crashes - 1))

    def _exited(self, c: ContainerState, term: dict) -> None:
        c.previous = c.terminated
        c.terminated = term
        c.process = None
        c.ready = False
        c.started = False
        if c.will_restart(self.policy):
            delay = self._backoff(c)
            c.crashes += 1
            c.next_start = time.monotonic() + delay
            c.pending_restart = True
            c.restart_count += 1
            c.waiting = (
                ("CrashLoopBackOff", f"back-off {delay:g}s restarting failed container={c.name} pod={self.pod_name}")
                if delay > 0
                else None
            )
        else:
            c.pending_restart = False

    def _poll(self, c: ContainerState) -> None:
        p = c.process
        if p is None:
            return
        p.kill_due()
        if not p.exited():
            return
        code = p.exit_code or 0
        term = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": c.started_at,
            "finishedAt": now_iso(),
            "containerID": p.container_id,
        }
        message = read_termination_message(c.termination_file)
        if message:
            term["message"] = message
        elif c.probe_kill:
            term["message"] = c.probe_kill
        elif code != 0 and c.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            # As the kubelet: the end of the log (at most 80 lines, 2048 bytes) when the
            # container failed and left its termination message file empty.
            tail = log_tail(os.path.join(self.log_dir, f"{c.name}.log"))
            if tail:
                term["message"] = tail
        log.info("pod %s: container %s exited %d", self.key, c.name, code)
        self._exited(c, term)

    def _probe(self, pod: dict, c: ContainerState) -> None:
        p = c.process
        if p is None or p.kill_deadline is not None:
            return
        t = time.monotonic()
        pr = c.probes.get("startupProbe")
        if pr is not None and not c.started:
            if pr.due(t):
                ok, msg = run_probe(pr.probe, c.spec, self.pod_ip, p.pid, c.env)
                pr.record(ok, msg, time.monotonic())
                if pr.result:
                    c.started = True
                elif pr.failures >= pr.failure_threshold:
                    self._probe_failed(pod, c, "Startup", pr.message)
            return
        pr = c.probes.get("livenessProbe")
        if pr is not None and pr.due(t):
            ok, msg = run_probe(pr.probe, c.spec, self.pod_ip, p.pid, c.env)
            pr.record(ok, msg, time.monotonic())
            if not pr.result:
                self._probe_failed(pod, c, "Liveness", pr.message)
                return
        pr = c.probes.get("readinessProbe")
        if pr is not None:
            if pr.due(t):
                ok, msg = run_probe(pr.probe, c.spec, self.pod_ip, p.pid, c.env)
                pr.record(ok, msg, time.monotonic())
            c.ready = c.started and pr.result
        else:
            c.ready = c.started

    def _probe_failed(self, pod: dict, c: ContainerState, kind: str, message: str) -> None:
        assert c.process is not None
        log.info("pod %s: container %s failed %s probe, killing it: %s", self.key, c.name, kind.lower(), message)
        c.probe_kill = f"{kind} probe failed: {message}".strip()
        c.ready = False
        grace = c.spec.get(kind.lower() + "Probe", {}).get("terminationGracePeriodSeconds")
        c.process.terminate(float(grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds", 30)))

    def _step(self, pod: dict) -> None:
        if not self._sandbox(pod):
            return
        t = time.monotonic()
        # Init containers, one at a time, in order.
        while self.init_index < len(self.inits):
            c = self.inits[self.init_index]
            self._poll(c)
            if c.process is not None:
                return
            if c.terminated is not None and not c.pending_restart:
                if c.terminated.get("exitCode") == 0:
                    self.init_index += 1
                    continue
                self.init_failed = True
                self._finish()
                return
            if t >= c.next_start:
                self._start(pod, c)
                if c.process is None and c.terminated is not None and not c.pending_restart:
                    continue  # failed to start and will not be retried
            return
        for c in self.containers:
            self._poll(c)
            if c.process is None and (c.runs == 0 or c.pending_restart) and t >= c.next_start:
                self._start(pod, c)
            if c.process is not None:
                self._probe(pod, c)
                if c.crashes and time.monotonic() - c.next_start > 2 * self.agent.backoff_max:
                    c.crashes = 0  # ran long enough: the back-off starts over
        if phase(pod["spec"], self.init_failed, True, self.containers) in ("Succeeded", "Failed"):
            self._finish()

    def _finish(self) -> None:
        """The pod is done for good: stop leftovers, release its network (the IP stays in status)."""
        self.terminal = True
        self._stop_processes(0)
        if self.netns is not None:
            self.agent.network.delete_pod(self.netns, self.uid)
            self.agent.network.release(self.pod_ip)
            self.netns = None
        log.info("pod %s: finished", self.key)

    def _stop_processes(self, grace: float) -> None:
        """SIGTERM every running container's process group, SIGKILL after the grace period (or
        at once when the API object disappears meanwhile), and reap them. Bounded."""
        running = [c for c in self.inits + self.containers if c.process is not None]
        start = time.monotonic()
        for c in running:
            assert c.process is not None
            c.process.kill_deadline = None
            c.process.terminate(grace)
        hard = start + grace + 10
        while running:
            for c in list(running):
                p = c.process
                assert p is not None
                if self.api_deleted:
                    p.kill_deadline = min(p.kill_deadline or 0, time.monotonic())
                p.kill_due()
                if p.exited():
                    code = p.exit_code or 0
                    self._record_stop(c, code)
                    running.remove(c)
            if not running or time.monotonic() > hard:
                break
            time.sleep(0.05)
        for c in running:  # unreachable unless SIGKILL did not work: give up on them
            log.error("pod %s: container %s (pid %s) did not die", self.key, c.name, c.process.pid if c.process else "?")
            c.process = None

    def _record_stop(self, c: ContainerState, code: int) -> None:
        assert c.process is not None
        c.previous = c.terminated
        c.terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": c.started_at,
            "finishedAt": now_iso(),
            "containerID": c.process.container_id,
        }
        message = read_termination_message(c.termination_file)
        if message:
            c.terminated["message"] = message
        c.process = None
        c.pending_restart = False
        c.ready = False

    def _delete_api_object(self) -> None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
        try:
            self.agent.api.delete(f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}", body)
            log.info("pod %s: deleted", self.key)
        except ApiError as e:
            if e.status not in (404, 409):
                log.warning("pod %s: delete failed: %s", self.key, e)

    # --- status ---

    def status(self, pod: dict) -> dict:
        init_done = self.init_index >= len(self.inits)
        ph = phase(pod["spec"], self.init_failed, init_done, self.containers)
        default_main = "PodInitializing" if self.inits and not init_done else "ContainerCreating"
        if self.netns is None and not self.terminal:
            default_main = "ContainerCreating"
        st: dict = {"phase": ph, "hostIP": self.agent.host_ip, "startTime": self.start_time}
        if self.pod_ip:
            st["podIP"] = self.pod_ip
            st["podIPs"] = [{"ip": self.pod_ip}]
        cs = [c.status(default_main) for c in self.containers]
        if self.sandbox_error:
            for s in cs:
                if "waiting" in s["state"]:
                    s["state"]["waiting"]["message"] = self.sandbox_error
        st["containerStatuses"] = cs
        if self.inits:
            st["initContainerStatuses"] = [
                c.status("PodInitializing" if self.netns is not None else "ContainerCreating") for c in self.inits
            ]
        cond = self.conditions
        cond.set("PodScheduled", True)
        pending_inits = [c.name for c in self.inits[self.init_index :]]
        if self.init_failed or pending_inits:
            cond.set("Initialized", False, "ContainersNotInitialized", f"containers with incomplete status: [{' '.join(pending_inits)}]")
        else:
            cond.set("Initialized", True)
        unready = [c.name for c in self.containers if not c.ready]
        if ph in ("Succeeded", "Failed"):
            cond.set("ContainersReady", False, "PodCompleted")
            cond.set("Ready", False, "PodCompleted")
        elif unready:
            msg = f"containers with unready status: [{' '.join(unready)}]"
            cond.set("ContainersReady", False, "ContainersNotReady", msg)
            cond.set("Ready", False, "ContainersNotReady", msg)
        else:
            cond.set("ContainersReady", True)
            cond.set("Ready", True)
        st["conditions"] = cond.list()
        return st

    def _report(self, pod: dict) -> None:
        st = self.status(pod)
        if st == self.last_status:
            return
        try:
            updated = self.agent.api.merge_patch(f"/api/v1/namespaces/{self.ns}/pods/{self.pod_name}/status", {"status": st})
            self.last_status = st
            if updated and updated.get("metadata", {}).get("uid") == self.uid:
                with self.lock:
                    if not self.pod["metadata"].get("deletionTimestamp"):
                        self.pod = updated
        except ApiError as e:
            if e.status == 404:
                self.api_deleted = True
            else:
                log.warning("pod %s: status update failed: %s", self.key, e)
        except OSError as e:
            log.warning("pod %s: status update failed: %s", self.key, e)
