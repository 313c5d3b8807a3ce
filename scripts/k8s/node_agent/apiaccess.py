"""In-cluster API access for pods, as a kubelet and kube-proxy give it (opt-in: --api-access):
a TCP forwarder on the bridge's gateway address, port 443, to the API server on loopback, the
`KUBERNETES_SERVICE_HOST`/`_PORT` variables pointing at it, and the service account's
credentials (a TokenRequest token, the cluster CA, the namespace) mounted at
/var/run/secrets/kubernetes.io/serviceaccount unless the pod or its service account turns
`automountServiceAccountToken` off. The API server's certificate must name the gateway address
(start-apiserver.sh: OSPREY_K8S_EXTRA_SANS=IP:<gateway>)."""

from __future__ import annotations

import logging
import socket
import threading
from urllib.parse import urlparse

from .api import Api

log = logging.getLogger(__name__)

MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME = "kube-api-access"
PORT = 443


class ApiForwarder:
    """Forwards connections on listen_ip:443 to the API server (one thread per direction)."""

    def __init__(self, listen_ip: str, server_url: str):
        u = urlparse(server_url)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 443)
        self.sock = socket.create_server((listen_ip, PORT), reuse_port=False)
        self.sock.settimeout(1.0)
        self.closed = threading.Event()
        threading.Thread(target=self._accept, name="api-forwarder", daemon=True).start()
        log.info("API server reachable from pods at %s:%d", listen_ip, PORT)

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError as e:
                log.warning("API forwarder: %s", e)
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        src.settimeout(None)
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def env(gateway: str) -> dict[str, str]:
    return {"KUBERNETES_SERVICE_HOST": gateway, "KUBERNETES_SERVICE_PORT": str(PORT),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(PORT)}


def wants_token(api: Api, pod: dict) -> bool:
    spec = pod["spec"]
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    ns = pod["metadata"]["namespace"]
    sa = api.get_or_none(f"/api/v1/namespaces/{ns}/serviceaccounts/{spec.get('serviceAccountName') or 'default'}")
    return (sa or {}).get("automountServiceAccountToken", True) is not False


def credentials(api: Api, pod: dict, ca_file: str | None) -> dict[str, bytes]:
    """token, ca.crt and namespace for the pod's service account (a one-hour token)."""
    ns = pod["metadata"]["namespace"]
    named = pod["spec"].get("serviceAccountName")
    sa = named or "default"
    spec: dict = {"expirationSeconds": 3600}
    if named:
        # Bound to the pod, as the kubelet's tokens are. Without the ServiceAccount admission
        # plugin (off on the test API server) a pod that names none has an empty
        # serviceAccountName, and the API server refuses to bind "default" to it.
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]}
    req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    token = api.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", req)["status"]["token"]
    ca = b""
    if ca_file:
        with open(ca_file, "rb") as f:
            ca = f.read()
    return {"token": token.encode(), "ca.crt": ca, "namespace": ns.encode()}
