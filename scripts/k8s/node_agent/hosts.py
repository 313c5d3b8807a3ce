"""/etc/hosts for a pod: the pod's own names, plus the namespace's Services (there is no DNS).

Service names (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) map to
- headless Services (clusterIP None): every ready endpoint address, and `host.svc.ns.svc...` for
  endpoints with a hostname (a pod's spec.hostname + spec.subdomain = the Service's name);
- ClusterIP Services: one ready endpoint address (there is no kube-proxy, so the ClusterIP itself
  would not answer; a port->targetPort mapping only works when both are equal).
Endpoints come from the Endpoints object when it has addresses, else from the Service's selector
over the namespace's Pods (ready ones with an IP), so this works with and without a
controller-manager.
"""

from __future__ import annotations

DOMAIN = "cluster.local"


def _pod_ready(pod: dict) -> bool:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    for c in pod.get("status", {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def _selected(selector: dict, pod: dict) -> bool:
    labels = pod.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def service_addresses(svc: dict, endpoints: dict | None, pods: list[dict]) -> list[tuple[str, str]]:
    """[(ip, hostname or "")] of the Service's ready endpoints."""
    out: list[tuple[str, str]] = []
    for subset in (endpoints or {}).get("subsets") or []:
        for addr in subset.get("addresses") or []:
            if addr.get("ip"):
                out.append((addr["ip"], addr.get("hostname", "")))
    if out:
        return out
    selector = svc.get("spec", {}).get("selector")
    if not selector:
        return []
    name = svc["metadata"]["name"]
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        ip = pod.get("status", {}).get("podIP")
        if ip and _pod_ready(pod) and _selected(selector, pod):
            spec = pod.get("spec", {})
            host = spec.get("hostname", "") if spec.get("subdomain") == name else ""
            out.append((ip, host))
    return out


def render(pod: dict, pod_ip: str, services: list[dict], endpoints: dict[str, dict], pods: list[dict]) -> str:
    meta, spec = pod["metadata"], pod.get("spec", {})
    ns = meta["namespace"]
    hostname = spec.get("hostname") or meta["name"]
    lines = [
        "# Kubernetes-managed hosts file (osprey test node agent).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
    ]
    own = [hostname]
    if spec.get("subdomain"):
        own.insert(0, f"{hostname}.{spec['subdomain']}.{ns}.svc.{DOMAIN}")
    if pod_ip:
        lines.append(f"{pod_ip}\t{' '.join(own)}")
    lines.append("")
    lines.append("# Services of namespace " + ns)
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        name = svc["metadata"]["name"]
        if svc.get("spec", {}).get("type") == "ExternalName":
            continue
        names = f"{name}.{ns}.svc.{DOMAIN} {name}.{ns}.svc {name}.{ns} {name}"
        addrs = service_addresses(svc, endpoints.get(name), pods)
        headless = svc.get("spec", {}).get("clusterIP") == "None"
        if not headless:
            addrs = addrs[:1]
        for ip, host in addrs:
            lines.append(f"{ip}\t{names}")
            if headless and host:
                lines.append(f"{ip}\t{host}.{name}.{ns}.svc.{DOMAIN} {host}.{name}.{ns}.svc {host}.{name}")
    return "\n".join(lines) + "\n"


def write_in_place(path: str, content: str) -> bool:
    """Rewrites the file keeping its inode (it is bind-mounted into running containers).
    Returns True when the content changed."""
    try:
        with open(path) as f:
            if f.read() == content:
                return False
    except FileNotFoundError:
        pass
    with open(path, "a+") as f:
        f.seek(0)
        f.truncate()
        f.write(content)
    return True
