"""Stand-in for /opt/pytorch-mnist/mnist.py of the kubeflowkatib/pytorch-mnist image.

The training operator's docs run `python3 /opt/pytorch-mnist/mnist.py --epochs=1` in that image.
The real image needs torch and cannot be pulled here, so Osprey's tests map the image to this
directory (scripts/k8s/node_agent/images.json) and this file runs ddp_logreg.py instead: the same
distributed environment (PyTorch or TF_CONFIG variables), --epochs honoured, other mnist flags
(--backend, --batch-size, ...) accepted and ignored.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddp_logreg  # noqa: E402

if __name__ == "__main__":
    sys.exit(ddp_logreg.main())
