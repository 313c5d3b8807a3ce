"""Entry point: python -m node_agent (with scripts/k8s on sys.path) or scripts/k8s/node-agent.py."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from .agent import Agent
from .api import Api, ApiConfig
from .images import DEFAULT_TABLE, ImageTable
from .netns import Network


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="node-agent",
        description="Osprey test node agent: registers Nodes and runs their Pods as local processes "
        "in per-pod network namespaces (test infrastructure; needs root).",
    )
    p.add_argument("--env-file", help="DIR/env written by start-apiserver.sh (else OSPREY_K8S_* from the environment)")
    p.add_argument("--node", action="append", dest="nodes", help="node name (repeatable; default osprey-node-0)")
    p.add_argument("--state-dir", default="/tmp/osprey-node-agent", help="logs, volumes, PVC directories")
    p.add_argument("--bridge", default="osprey-br0", help="host bridge name (<= 15 characters)")
    p.add_argument("--pod-cidr", default="10.244.0.0/16", help="pod addresses; the first one is the bridge's")
    p.add_argument("--image-table", default=DEFAULT_TABLE, help="JSON image table (default: the package's images.json)")
    p.add_argument("--cpu", default="4")
    p.add_argument("--memory", default="8Gi")
    p.add_argument("--pods", default="110")
    p.add_argument("--ephemeral-storage", default="100Gi")
    p.add_argument("--label", action="append", default=[], help="extra node label k=v (repeatable)")
    p.add_argument("--taint", action="append", default=[], help="node taint key=value:Effect (repeatable)")
    p.add_argument("--backoff-base", type=float, default=10.0, help="restart back-off start, seconds (kubelet: 10)")
    p.add_argument("--backoff-max", type=float, default=300.0, help="restart back-off cap, seconds (kubelet: 300)")
    p.add_argument("--lease-interval", type=float, default=10.0, help="Lease renewal period, seconds")
    p.add_argument("--status-interval", type=float, default=60.0, help="node status period, seconds")
    p.add_argument("--hosts-interval", type=float, default=1.0, help="/etc/hosts refresh period, seconds")
    p.add_argument("--unregister-on-exit", action="store_true", help="delete the Nodes and Leases on exit")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--api-access", action="store_true",
                   help="give pods the API server: a forwarder on the bridge gateway:443, KUBERNETES_SERVICE_HOST/PORT "
                        "and service account tokens (the API server's certificate must name the gateway)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if os.geteuid() != 0:
        print("node-agent: needs root (network namespaces, bind mounts)", file=sys.stderr)
        return 2
    config = ApiConfig.from_env_file(args.env_file) if args.env_file else ApiConfig.from_mapping(dict(os.environ))
    labels = dict(kv.split("=", 1) for kv in args.label)
    taints = []
    for t in args.taint:
        kv, _, effect = t.partition(":")
        key, _, value = kv.partition("=")
        taints.append({"key": key, "value": value, "effect": effect or "NoSchedule"})
    agent = Agent(
        Api(config),
        args.nodes or ["osprey-node-0"],
        args.state_dir,
        Network(args.bridge, args.pod_cidr),
        ImageTable(args.image_table),
        {"cpu": args.cpu, "memory": args.memory, "pods": args.pods, "ephemeral-storage": args.ephemeral_storage},
        labels,
        taints,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
        lease_interval=args.lease_interval,
        status_interval=args.status_interval,
        hosts_interval=args.hosts_interval,
        api_access=args.api_access,
        ca_file=config.ca_file,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        agent.start()
        while not stop.wait(1):
            pass
    finally:
        agent.shutdown(unregister=args.unregister_on_exit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
