"""TCP rendezvous and all-reduce for ddp_logreg.py (Python standard library + numpy).

Star topology: rank 0 listens, every other rank connects to it. Every message is an 8-byte
big-endian byte count followed by that many bytes of a little-endian float64 array. After
connecting, a rank sends [rank]; rank 0 answers [world] when it accepts the rank, or [-1] when it
refuses it (out of range, or a rank already connected) and closes that connection.
"""

from __future__ import annotations

import errno
import socket
import struct
import time

import numpy as np

RETRY_INTERVAL = 0.2
# Errors a connecting rank retries: the coordinator's name may appear in /etc/hosts only after a
# while (gaierror), and it may not listen yet (refused) or its address may not be routed yet.
RETRY_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}


class RendezvousTimeout(Exception):
    """Not every rank showed up before the deadline."""


class Refused(Exception):
    """The coordinator refused this rank."""


def send(sock: socket.socket, array) -> None:
    payload = np.asarray(array, dtype="<f8").tobytes()
    sock.sendall(struct.pack(">Q", len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    return bytes(buf)


def recv(sock: socket.socket) -> np.ndarray:
    (n,) = struct.unpack(">Q", _recv_exact(sock, 8))
    return np.frombuffer(_recv_exact(sock, n), dtype="<f8").copy()


def _nodelay(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one small message per step


def serve(port: int, world: int, deadline: float, log=print) -> dict[int, socket.socket]:
    """Rank 0: accept world-1 ranks on 0.0.0.0:port; returns rank -> connection."""
    peers: dict[int, socket.socket] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lsock:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind(("0.0.0.0", port))
        lsock.listen(world)
        log(f"rendezvous: listening on 0.0.0.0:{port} for {world - 1} rank(s)")
        while len(peers) < world - 1:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RendezvousTimeout(f"{len(peers)} of {world - 1} ranks connected (have {sorted(peers)})")
            lsock.settimeout(remaining)
            try:
                conn, addr = lsock.accept()
            except TimeoutError:
                continue
            try:
                conn.settimeout(max(0.1, deadline - time.monotonic()))
                rank = int(recv(conn)[0])
            except (OSError, IndexError, ValueError) as e:  # timeouts and resets are OSErrors
                log(f"rendezvous: dropped a connection from {addr[0]} that sent no rank: {e}")
                conn.close()
                continue
            if not 0 < rank < world or rank in peers:
                why = "out of range" if not 0 < rank < world else "already connected"
                log(f"rendezvous: refusing rank {rank} from {addr[0]}: {why}")
                try:
                    send(conn, [-1.0])
                finally:
                    conn.close()
                continue
            conn.settimeout(None)
            _nodelay(conn)
            send(conn, [float(world)])
            peers[rank] = conn
            log(f"rendezvous: rank {rank} connected from {addr[0]}")
    return peers


def _retryable(e: OSError) -> bool:
    return isinstance(e, (socket.gaierror, ConnectionRefusedError, TimeoutError)) or e.errno in RETRY_ERRNOS


def connect(host: str, port: int, rank: int, world: int, deadline: float, log=print) -> socket.socket:
    """Rank > 0: connect to the coordinator, retrying until the deadline."""
    attempts = 0
    while True:
        attempts += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RendezvousTimeout(f"could not reach the coordinator {host}:{port} after {attempts - 1} attempt(s)")
        try:
            sock = socket.create_connection((host, port), timeout=min(remaining, 5.0))
            break
        except OSError as e:
            if not _retryable(e):
                raise
            if attempts == 1 or attempts % 25 == 0:
                log(f"rendezvous: {host}:{port} not reachable yet ({e}); retrying")
            time.sleep(min(RETRY_INTERVAL, max(0.0, deadline - time.monotonic())))
    try:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        send(sock, [float(rank)])
        answer = int(recv(sock)[0])
    except TimeoutError:
        sock.close()
        raise RendezvousTimeout(f"the coordinator {host}:{port} did not answer in time") from None
    if answer != world:
        sock.close()
        if answer < 0:
            raise Refused(f"the coordinator {host}:{port} refused rank {rank}")
        raise Refused(f"the coordinator has world={answer}, this rank world={world}")
    sock.settimeout(None)
    _nodelay(sock)
    log(f"rendezvous: connected to {host}:{port}")
    return sock


class Group:
    """All-reduce (mean) and gather over the star: rank 0 holds `peers`, others `coordinator`."""

    def __init__(self, rank: int, world: int, peers=None, coordinator=None):
        self.rank, self.world = rank, world
        self.peers: dict[int, socket.socket] = peers or {}
        self.coordinator: socket.socket | None = coordinator

    def allreduce_mean(self, local: np.ndarray) -> np.ndarray:
        """Rank 0 sums its own array and the others' in rank order, divides by world and sends
        the result back, so every rank gets bit-identical values."""
        if self.rank != 0:
            send(self.coordinator, local)
            return recv(self.coordinator)
        total = np.array(local, dtype="<f8")
        for r in range(1, self.world):
            total = total + recv(self.peers[r])
        mean = total / self.world
        for r in range(1, self.world):
            send(self.peers[r], mean)
        return mean

    def gather(self, local: np.ndarray) -> list[np.ndarray] | None:
        """Rank 0 gets every rank's array (in rank order); the others get None."""
        if self.rank != 0:
            send(self.coordinator, local)
            return None
        return [np.asarray(local, dtype="<f8")] + [recv(self.peers[r]) for r in range(1, self.world)]

    def broadcast(self, value: np.ndarray | None) -> np.ndarray:
        if self.rank != 0:
            return recv(self.coordinator)
        for r in range(1, self.world):
            send(self.peers[r], value)
        return np.asarray(value, dtype="<f8")

    def close(self) -> None:
        for s in list(self.peers.values()) + ([self.coordinator] if self.coordinator else []):
            s.close()
