"""Data-parallel logistic regression over TCP (Python 3.11 + numpy, no torch).

What the Kubeflow training jobs (PyTorchJob, TFJob) of Osprey's tests run, as local processes or
as pods of the test node agent. Ranks come from TF_CONFIG (chief, master, worker in that order;
ps and evaluator tasks exit 0 without training) or from the PyTorch variables RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT. Rank 0 listens on the coordinator's port, the other ranks connect to it
(ddp_comm.py). Each rank trains on X[rank::world] of one synthetic data set, the gradients are
averaged every step, so all ranks end with bit-identical weights; rank 0 checks that through the
sha256 of every rank's weights.

Exit codes: 0 trained, weights identical, loss below --loss-threshold; 1 weights differ, loss too
high or a peer was lost; 2 bad TF_CONFIG/rank; 3 rendezvous failed; --crash-exit CODE on request.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddp_comm  # noqa: E402

PARTICIPANT_TYPES = ("chief", "master", "worker")


def log(msg: str) -> None:
    print(msg, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=4096)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--epochs", type=int, default=None, help="multiplies --steps (the mnist example's flag)")
    p.add_argument("--loss-threshold", type=float, default=0.4)
    p.add_argument("--rendezvous-timeout", type=float, default=120.0)
    p.add_argument("--crash-exit", type=int, default=None, help="exit with this code at start (see --crash-rank)")
    p.add_argument("--crash-rank", type=int, default=-1, help="the rank that crashes (-1: none)")
    p.add_argument("--crash-marker", default=None, help="crash only while this file does not exist (created first)")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds to sleep before anything else")
    return p.parse_known_args(argv)


def discover(environ) -> tuple[int, int, str, int, str] | None:
    """(rank, world, coordinator host, port, source); None for a ps/evaluator task."""
    raw = environ.get("TF_CONFIG")
    if raw:
        cfg = json.loads(raw)
        cluster, task = cfg.get("cluster", {}), cfg.get("task", {})
        kind, index = task.get("type", ""), int(task.get("index", 0))
        if kind in ("ps", "evaluator"):
            return None
        members = [(t, i, addr) for t in PARTICIPANT_TYPES for i, addr in enumerate(cluster.get(t) or [])]
        ranks = [j for j, (t, i, _) in enumerate(members) if (t, i) == (kind, index)]
        if not ranks:
            raise ValueError(f"task {kind}[{index}] is not in the cluster's {'/'.join(PARTICIPANT_TYPES)} lists")
        host, _, port = members[0][2].rpartition(":")
        return ranks[0], len(members), host, int(port), "TF_CONFIG"
    rank, world = int(environ.get("RANK", "0")), int(environ.get("WORLD_SIZE", "1"))
    host, port = environ.get("MASTER_ADDR", "127.0.0.1"), int(environ.get("MASTER_PORT", "23456"))
    return rank, world, host, port, "pytorch"


def maybe_crash(args, rank: int) -> None:
    if args.crash_exit is None or args.crash_rank != rank:
        return
    if args.crash_marker:
        if os.path.exists(args.crash_marker):
            log(f"crash marker {args.crash_marker} exists: running normally (rank {rank})")
            return
        open(args.crash_marker, "w").close()
    log(f"crashing with exit code {args.crash_exit} (rank {rank})")
    os._exit(args.crash_exit)


def dataset(seed: int, samples: int, features: int) -> tuple[np.ndarray, np.ndarray]:
    """Points from N(0, 1); label 1 where a fixed random linear function plus N(0, 1) noise is
    positive (learnable, not separable)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, features))
    w_true = rng.normal(size=features)
    y = (X @ w_true + 0.5 + rng.normal(size=samples) > 0).astype(np.float64)
    return X, y


def grad_and_loss(X, y, params) -> np.ndarray:
    """[d loss/d w..., d loss/d b, loss]: mean log-loss over the shard; params = [w..., b]."""
    z = X @ params[:-1] + params[-1]
    err = 1.0 / (1.0 + np.exp(-z)) - y
    loss = np.mean(np.logaddexp(0.0, z) - y * z)
    return np.concatenate([X.T @ err / len(y), [err.mean(), loss]])


def train(args, group: ddp_comm.Group, rank: int, world: int) -> tuple[np.ndarray, float]:
    X, y = dataset(args.seed, args.samples, args.features)
    X, y = X[rank::world], y[rank::world]
    steps = args.steps * args.epochs if args.epochs is not None else args.steps
    params = np.zeros(args.features + 1)
    for step in range(1, steps + 1):
        # The gradient and the shard loss travel in one all-reduce, so the printed loss is the
        # global one: the mean of the ranks' shard losses at the weights before this step.
        mean = group.allreduce_mean(grad_and_loss(X, y, params))
        params = params - args.lr * mean[:-1]
        if step == 1 or step % 50 == 0:
            log(f"rank={rank} step={step} loss={mean[-1]:.6f}")
    final_loss = float(group.allreduce_mean(grad_and_loss(X, y, params))[-1])
    return params, final_loss


def finish(group: ddp_comm.Group, rank: int, world: int, params, loss: float, threshold: float) -> int:
    digest = hashlib.sha256(np.asarray(params, dtype="<f8").tobytes()).digest()
    log(f"final rank={rank} world={world} loss={loss:.6f} weights_sha256={digest.hex()}")
    # Digests travel as 32 float64 values, one per byte; rank 0 compares and tells the others.
    digests = group.gather(np.frombuffer(digest, dtype=np.uint8).astype(np.float64))
    verdict = None
    if digests is not None:
        hexes = [bytes(d.astype(np.uint8)).hex() for d in digests]
        verdict = [1.0 if all(h == hexes[0] for h in hexes) else 0.0]
        if verdict[0]:
            log(f"weights identical on all {world} rank(s)")
        else:
            log("weights differ: " + ", ".join(f"rank {r}: {h}" for r, h in enumerate(hexes)))
    same = bool(group.broadcast(verdict)[0])
    code = 0
    if not same:
        if rank != 0:
            log("weights differ between ranks (rank 0 compared the digests)")
        code = 1
    if loss >= threshold:
        log(f"final loss {loss:.6f} >= threshold {threshold}: training failed")
        code = 1
    return code


def main(argv=None) -> int:
    args, unknown = parse_args(sys.argv[1:] if argv is None else argv)
    if args.sleep > 0:
        time.sleep(args.sleep)
    if unknown:
        log(f"ignoring unknown arguments: {' '.join(unknown)}")
    try:
        found = discover(os.environ)
    except (ValueError, KeyError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        log(f"bad distributed environment: {e}")
        return 2
    if found is None:
        log(f"task type {json.loads(os.environ['TF_CONFIG'])['task']['type']} is not a training participant: exiting")
        return 0
    rank, world, host, port, source = found
    log(f"rank={rank} world={world} coordinator={host}:{port} source={source}")
    if not 0 <= rank < world:
        log(f"rank {rank} is outside world size {world}")
        return 2
    maybe_crash(args, rank)
    deadline = time.monotonic() + args.rendezvous_timeout
    try:
        if rank == 0:
            group = ddp_comm.Group(rank, world, peers=ddp_comm.serve(port, world, deadline, log) if world > 1 else {})
        else:
            group = ddp_comm.Group(rank, world, coordinator=ddp_comm.connect(host, port, rank, world, deadline, log))
    except ddp_comm.RendezvousTimeout as e:
        log(f"rendezvous timed out after {args.rendezvous_timeout:g} s: {e}")
        return 3
    except (ddp_comm.Refused, OSError) as e:
        log(f"rendezvous failed: {e}")
        return 3
    try:
        params, loss = train(args, group, rank, world)
        return finish(group, rank, world, params, loss, args.loss_threshold)
    except OSError as e:  # ConnectionError included
        log(f"rank {rank}: lost a peer during training: {e}")
        return 1
    finally:
        group.close()


if __name__ == "__main__":
    sys.exit(main())
