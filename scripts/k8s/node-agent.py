#!/usr/bin/env python3
"""Osprey's test node agent (see scripts/k8s/README.md, "The test node agent"). Needs root.

    scripts/k8s/node-agent.py --env-file DIR/env --node osprey-node-0 [--state-dir DIR] ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from node_agent.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
