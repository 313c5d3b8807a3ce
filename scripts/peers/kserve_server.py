"""KServe 0.21 model server: serves models/mlp/1/model.onnx through ONNX Runtime (KServe v2 protocol).

Run by scripts/compare_peers.sh as
  PEER_MODEL_PATH=... PEER_HTTP_PORT=19020 PEER_GRPC_PORT=19021 python kserve_server.py
KServe has no in-process batching: every request is one ONNX Runtime call.
KServe binds 0.0.0.0 / [::] unconditionally; the two patches below keep it on loopback.
"""
import logging
import os

import grpc.aio._server
import numpy as np
import onnxruntime as ort
import uvicorn

HOST = os.environ.get("PEER_HOST", "127.0.0.1")

# --- keep KServe on loopback -------------------------------------------------------------------
_uvicorn_config_init = uvicorn.Config.__init__


def _config_init(self, *args, **kwargs):
    kwargs["host"] = HOST
    _uvicorn_config_init(self, *args, **kwargs)


uvicorn.Config.__init__ = _config_init

_add_insecure_port = grpc.aio._server.Server.add_insecure_port


def _add_port(self, address):
    return _add_insecure_port(self, address.replace("[::]", HOST).replace("0.0.0.0", HOST))


grpc.aio._server.Server.add_insecure_port = _add_port
# ------------------------------------------------------------------------------------------------

from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer  # noqa: E402


class OnnxMlp(Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path
        self.session = None
        self.load()

    def load(self) -> bool:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("PEER_ORT_THREADS", "1"))
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        self.ready = True
        return self.ready

    # The v2 model metadata (GET /v2/models/mlp, gRPC ModelMetadata): without it KServe answers
    # "inputs": [] and a client that builds requests from metadata has nothing to send.
    def get_input_types(self):
        return [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]

    def get_output_types(self):
        return [{"name": "output", "datatype": "FP32", "shape": [-1, 10]}]

    async def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        x = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
        y = self.session.run(["output"], {"input": x})[0]
        out = InferOutput(name="output", shape=list(y.shape), datatype="FP32")
        out.set_data_from_numpy(y, binary_data=False)
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=[out]
        )


if __name__ == "__main__":
    model = OnnxMlp(os.environ.get("PEER_MODEL_NAME", "mlp"), os.environ["PEER_MODEL_PATH"])
    server = ModelServer(
        http_port=int(os.environ.get("PEER_HTTP_PORT", "19020")),
        grpc_port=int(os.environ.get("PEER_GRPC_PORT", "19021")),
        workers=1,
        enable_latency_logging=False,
    )
    # KServe logs every request at INFO (REST timing "kserve.trace", uvicorn access log, the gRPC
    # logging interceptor). The other servers log no line per request; keep KServe quiet too, so
    # that the 2-core comparison measures serving, not logging (PEER_QUIET=0 keeps KServe's default).
    if os.environ.get("PEER_QUIET", "1") == "1":
        for name in ("kserve", "kserve.trace", "uvicorn.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    server.start([model])
