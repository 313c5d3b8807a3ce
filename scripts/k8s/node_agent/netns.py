"""Pod networking: one Linux bridge on the host, one network namespace + veth pair per pod.

The bridge gets the first address of the pod CIDR (default osprey-br0, 10.244.0.1/16); the
kernel then routes the whole CIDR to the bridge, so the host reaches every pod IP. Each pod gets
the next free address, a default route via the bridge address and its own loopback. Nothing is
forwarded or NATed: pods reach the host (bridge address) and each other, nothing else.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import threading

log = logging.getLogger("node_agent.netns")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def kill_netns_pids(name: str) -> None:
    """SIGKILLs every process in the named network namespace (`ip netns pids`)."""
    res = ip("netns", "pids", name, check=False)
    for word in res.stdout.split():
        if word.isdigit():
            try:
                os.kill(int(word), signal.SIGKILL)
            except ProcessLookupError:
                pass


class Network:
    def __init__(self, bridge: str, cidr: str):
        if len(bridge) > 15:
            raise ValueError(f"bridge name longer than 15 characters: {bridge}")
        self.bridge = bridge
        self.net = ipaddress.ip_network(cidr, strict=False)
        hosts = self.net.hosts()
        self.gateway = next(hosts)
        self.prefix = self.net.prefixlen
        # Names derive from the bridge so two agents on different bridges never touch each other's.
        self.ns_prefix = f"{bridge}-"
        self.lock = threading.Lock()
        self.used: set[ipaddress.IPv4Address] = {self.gateway}
        self.next = int(self.gateway) + 1

    # --- host side ---

    def setup(self) -> None:
        self.remove_stale()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/{self.prefix}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        log.info("bridge %s %s/%s", self.bridge, self.gateway, self.prefix)

    def remove_stale(self) -> None:
        """Removes what a previous agent on the same bridge left behind (killed with SIGKILL),
        including the processes still running in those namespaces."""
        for name in self.list_netns():
            log.warning("removing stale network namespace %s", name)
            kill_netns_pids(name)
            ip("netns", "del", name, check=False)
        if ip("link", "show", self.bridge, check=False).returncode == 0:
            log.warning("removing stale bridge %s", self.bridge)
            ip("link", "del", self.bridge, check=False)

    def list_netns(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir("/run/netns") if n.startswith(self.ns_prefix))
        except FileNotFoundError:
            return []

    def teardown(self) -> None:
        for name in self.list_netns():
            kill_netns_pids(name)
            ip("netns", "del", name, check=False)
        ip("link", "del", self.bridge, check=False)

    # --- per pod ---

    def allocate(self) -> str:
        with self.lock:
            size = self.net.num_addresses
            base = int(self.net.network_address)
            for _ in range(size):
                if self.next >= base + size - 1:
                    self.next = int(self.gateway) + 1
                addr = ipaddress.ip_address(self.next)
                self.next += 1
                if addr not in self.used:
                    self.used.add(addr)
                    return str(addr)
        raise RuntimeError(f"pod CIDR {self.net} exhausted")

    def release(self, addr: str) -> None:
        with self.lock:
            self.used.discard(ipaddress.ip_address(addr))

    def ns_name(self, uid: str) -> str:
        return self.ns_prefix + uid.replace("-", "")[:12]

    def create_pod(self, uid: str) -> tuple[str, str]:
        """Creates the pod's namespace and veth pair; returns (netns name, pod IP)."""
        ns = self.ns_name(uid)
        short = uid.replace("-", "")[:10]
        host_if = f"osv{short}"  # <= 15 characters
        addr = self.allocate()
        try:
            ip("netns", "del", ns, check=False)
            ip("link", "del", host_if, check=False)
            ip("netns", "add", ns)
            ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", host_if, "master", self.bridge, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "addr", "add", f"{addr}/{self.prefix}", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            ip("-n", ns, "route", "add", "default", "via", str(self.gateway))
        except Exception:
            self.delete_pod(ns, uid)
            self.release(addr)
            raise
        return ns, addr

    def delete_pod(self, ns: str, uid: str) -> None:
        # Deleting the namespace destroys eth0 and with it the host end of the pair.
        ip("netns", "del", ns, check=False)
        ip("link", "del", f"osv{uid.replace('-', '')[:10]}", check=False)
