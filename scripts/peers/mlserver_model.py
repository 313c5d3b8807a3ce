"""MLServer 1.7 custom runtime: serves models/mlp/1/model.onnx through ONNX Runtime.

Copied by scripts/compare_peers.sh into .osprey/peers/mlserver/repo/mlp/ with model-settings.json
(adaptive batching: max_batch_size 64) and settings.json (ports, loopback).
"""
import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxMlp(MLModel):
    async def load(self) -> bool:
        path = await get_model_uri(self._settings)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("PEER_ORT_THREADS", "1"))
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        y = self._session.run(["output"], {"input": x})[0]
        return InferenceResponse(
            id=payload.id,
            model_name=self.name,
            outputs=[NumpyCodec.encode_output("output", y)],
        )
