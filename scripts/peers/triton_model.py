"""Triton python-backend model: serves models/mlp/1/model.onnx through ONNX Runtime.

Copied by scripts/compare_peers.sh to .osprey/peers/triton/models/mlp/1/model.py, next to a copy of
model.onnx. Triton's dynamic batcher (config.pbtxt: dynamic_batching {}) hands execute() several
requests at once; they are concatenated into one ONNX Runtime call and split again.
"""
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        opts = ort.SessionOptions()
        # PEER_ORT_THREADS (set by compare_peers.sh): N > 0 intra-op threads, e.g. 1 as Osprey's
        # models/mlp/config.pbtxt asks of its own runtime; 0 sets nothing, ONNX Runtime's defaults
        # (one intra-op thread per core), as a Triton user's model.py would.
        threads = int(os.environ.get("PEER_ORT_THREADS", "1"))
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        arrays = [
            pb_utils.get_input_tensor_by_name(r, "input").as_numpy().astype(np.float32, copy=False)
            for r in requests
        ]
        rows = [a.shape[0] for a in arrays]
        batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        out = self.session.run(["output"], {"input": batch})[0]
        responses, start = [], 0
        for n in rows:
            tensor = pb_utils.Tensor("output", np.ascontiguousarray(out[start:start + n]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += n
        return responses
