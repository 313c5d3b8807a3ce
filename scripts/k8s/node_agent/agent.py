"""The agent: nodes, pod watches (one per node), pod workers, /etc/hosts refresh, shutdown."""

from __future__ import annotations

import logging
import os
import threading
import time

from . import apiaccess
from .api import Api, ApiError
from .images import ImageTable
from .netns import Network
from .node import Node
from .pod import PodWorker
from .volumes import MountPoints

log = logging.getLogger("node_agent")


class Agent:
    def __init__(
        self,
        api: Api,
        nodes: list[str],
        state_dir: str,
        network: Network,
        images: ImageTable,
        capacity: dict,
        labels: dict,
        taints: list,
        backoff_base: float = 10.0,
        backoff_max: float = 300.0,
        lease_interval: float = 10.0,
        status_interval: float = 60.0,
        hosts_interval: float = 1.0,
        api_access: bool = False,
        ca_file: str | None = None,
    ):
        self.api = api
        # In-cluster API access for pods (apiaccess.py): the forwarder starts with the bridge.
        self.api_access = api_access
        self.ca_file = ca_file
        self.forwarder = None
        self.state_dir = os.path.abspath(state_dir)
        self.network = network
        self.images = images
        self.allocatable = capacity
        self.host_ip = str(network.gateway)
        self.nodes = [Node(api, n, self.host_ip, capacity, labels, taints) for n in nodes]
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.hosts_interval = hosts_interval
        self.mount_points = MountPoints()
        self.workers: dict[str, PodWorker] = {}  # pod uid -> worker
        self.all_workers: list[PodWorker] = []  # including those still finishing a deleted pod
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def base_env(self, hostname: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOSTNAME": hostname, "HOME": "/root"}
        if self.api_access:
            env.update(apiaccess.env(str(self.network.gateway)))
        return env

    # --- lifecycle ---

    def start(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        self.network.setup()
        if self.api_access:
            self.forwarder = apiaccess.ApiForwarder(str(self.network.gateway), self.api.config.server)
        for node in self.nodes:
            node.register()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        threading.Thread(target=self._hosts_loop, name="hosts", daemon=True).start()
        for node in self.nodes:
            threading.Thread(target=self._watch_loop, args=(node.name,), name=f"watch-{node.name}", daemon=True).start()
        with open(os.path.join(self.state_dir, "ready"), "w") as f:
            f.write(f"{os.getpid()}\n")
        log.info("agent ready: nodes %s, state %s", [n.name for n in self.nodes], self.state_dir)

    def shutdown(self, unregister: bool = False) -> None:
        self.stop.set()
        with self.lock:
            workers = [w for w in self.all_workers if w.is_alive()]
        for w in workers:
            w.shutdown()
        deadline = time.monotonic() + 20
        for w in workers:
            w.join(max(0.1, deadline - time.monotonic()))
        self.mount_points.release_all()
        if self.forwarder is not None:
            self.forwarder.close()
        self.network.teardown()
        if unregister:
            for node in self.nodes:
                node.unregister()
        try:
            os.unlink(os.path.join(self.state_dir, "ready"))
        except FileNotFoundError:
            pass
        log.info("agent stopped")

    # --- heartbeats ---

    def _heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self.stop.wait(self.lease_interval):
            status_due = time.monotonic() - last_status >= self.status_interval
            for node in self.nodes:
                try:
                    node.renew_lease()
                    if status_due:
                        node.post_status()
                except (ApiError, OSError) as e:
                    log.warning("heartbeat of %s failed: %s", node.name, e)
            if status_due:
                last_status = time.monotonic()

    # --- pods ---

    def _watch_loop(self, node: str) -> None:
        selector = f"spec.nodeName={node}"
        rv = ""
        while not self.stop.is_set():
            try:
                if not rv:
                    listing = self.api.get("/api/v1/pods", fieldSelector=selector)
                    rv = listing["metadata"]["resourceVersion"]
                    self._sync(node, listing.get("items") or [])
                for ev in self.api.watch("/api/v1/pods", rv, fieldSelector=selector):
                    if self.stop.is_set():
                        return
                    kind, obj = ev.get("type"), ev.get("object") or {}
                    if kind == "ERROR":
                        log.info("watch of %s: %s; re-listing", node, obj.get("message"))
                        rv = ""  # 410 Gone (or anything else): list again
                        break
                    rv = obj.get("metadata", {}).get("resourceVersion", rv)
                    if kind in ("ADDED", "MODIFIED"):
                        self._upsert(node, obj)
                    elif kind == "DELETED":
                        self._deleted(obj)
            except ApiError as e:
                if e.status == 410:
                    rv = ""
                else:
                    log.warning("watch of %s failed: %s", node, e)
                    self.stop.wait(1)
            except (OSError, ValueError) as e:
                if self.stop.is_set():
                    return
                log.warning("watch of %s broke: %s", node, e)
                self.stop.wait(1)

    def _sync(self, node: str, pods: list[dict]) -> None:
        uids = {p["metadata"]["uid"] for p in pods}
        with self.lock:
            gone = [w for uid, w in self.workers.items() if w.node == node and uid not in uids]
            for w in gone:
                self.workers.pop(w.uid, None)
        for w in gone:
            w.deleted()
        for p in pods:
            self._upsert(node, p)

    def _upsert(self, node: str, pod: dict) -> None:
        if self.stop.is_set():
            return
        uid = pod["metadata"]["uid"]
        with self.lock:
            w = self.workers.get(uid)
            if w is None:
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp"):
                    return  # finished before this agent started: nothing to run
                w = PodWorker(self, node, pod)
                self.workers[uid] = w
                self.all_workers = [x for x in self.all_workers if x.is_alive()] + [w]
                w.start()
                return
        w.update(pod)

    def _deleted(self, pod: dict) -> None:
        with self.lock:
            w = self.workers.pop(pod["metadata"]["uid"], None)
        if w is not None:
            w.deleted()

    # --- /etc/hosts ---

    def namespace_view(self, ns: str) -> tuple[list, dict, list]:
        services = self.api.get(f"/api/v1/namespaces/{ns}/services").get("items") or []
        eps = self.api.get(f"/api/v1/namespaces/{ns}/endpoints").get("items") or []
        pods = self.api.get(f"/api/v1/namespaces/{ns}/pods").get("items") or []
        return services, {e["metadata"]["name"]: e for e in eps}, pods

    def _hosts_loop(self) -> None:
        while not self.stop.wait(self.hosts_interval):
            with self.lock:
                workers = [w for w in self.workers.values() if w.netns is not None]
            for ns in sorted({w.ns for w in workers}):
                try:
                    view = self.namespace_view(ns)
                    for w in workers:
                        if w.ns == ns:
                            w.refresh_hosts(*view)
                except (ApiError, OSError, KeyError) as e:
                    log.warning("hosts refresh of namespace %s failed: %s", ns, e)
