"""Stages from stock clients: MiniLM embeddings from strings (tritonclient HTTP and gRPC) against
sentence-transformers' reference vectors, the classification extension through tritonclient's
class_count, and the explainer over plain HTTP."""

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

REPO = Path(__file__).resolve().parents[3]
REFERENCE = json.loads(
    (REPO / "runtimes" / "tests" / "data" / "minilm_reference.json").read_text("utf-8")
)


@pytest.fixture(scope="module")
def http(server):
    c = httpclient.InferenceServerClient(server.http_url)
    yield c
    c.close()


@pytest.fixture(scope="module")
def grpc(server):
    c = grpcclient.InferenceServerClient(server.grpc_url)
    yield c
    c.close()


def _embed(module, client, texts, binary):
    arr = np.array([[t.encode("utf-8")] for t in texts], dtype=np.object_)
    inp = module.InferInput("text", list(arr.shape), "BYTES")
    if module is httpclient:
        inp.set_data_from_numpy(arr, binary_data=binary)
        out = [module.InferRequestedOutput("embedding", binary_data=binary)]
    else:
        inp.set_data_from_numpy(arr)
        out = [module.InferRequestedOutput("embedding")]
    return client.infer("minilm", [inp], outputs=out).as_numpy("embedding")


@pytest.mark.parametrize("variant", ["http_json", "http_binary", "grpc"])
def test_minilm_embeddings_match_sentence_transformers(http, grpc, variant):
    sentences = REFERENCE["sentences"]
    texts = [s["text"] for s in sentences]
    if variant == "grpc":
        got = _embed(grpcclient, grpc, texts, True)
    else:
        got = _embed(httpclient, http, texts, variant == "http_binary")
    assert got.shape == (len(texts), 384)
    for row, s in zip(got, sentences):
        want = np.array(s["embedding"])
        cos = float(row @ want / (np.linalg.norm(row) * np.linalg.norm(want)))
        assert cos >= 0.9999, f"{s['text']!r}: cosine {cos}"


@pytest.mark.parametrize("proto", ["http", "grpc"])
def test_classification_class_count(http, grpc, proto):
    module, client = (httpclient, http) if proto == "http" else (grpcclient, grpc)
    x = np.array([[5.9, 3.0, 5.1, 1.8], [5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
    inp = module.InferInput("float_input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    out = module.InferRequestedOutput("probabilities", class_count=3)
    res = client.infer("iris", [inp], outputs=[out]).as_numpy("probabilities")
    assert res.shape == (2, 3)
    top = [r[0].decode().split(":") for r in res]
    assert (top[0][1], top[0][2]) == ("2", "virginica")
    assert (top[1][1], top[1][2]) == ("0", "setosa")
    # Descending scores, and they are the model's probabilities.
    scores = [[float(c.decode().split(":")[0]) for c in row] for row in res]
    for row in scores:
        assert row == sorted(row, reverse=True)
        assert abs(sum(row) - 1.0) < 1e-4


def _post(server, path, body):
    req = urllib.request.Request(
        f"http://{server.http_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def test_explain_linear_over_http(server):
    w = np.array([1.0, -2.0, 3.0, 0.5])
    x = np.array([2.0, 1.0, -1.0, 3.0])
    res = _post(
        server,
        "/v2/models/linear/explain",
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": x.tolist()}]},
    )
    phi = np.array(res["explanations"][0]["attributions"])
    assert np.allclose(phi, w * x, atol=1e-4), phi
    kserve_v1 = _post(server, "/v1/models/linear:explain", {"instances": [x.tolist()]})
    assert np.allclose(kserve_v1["explanations"][0]["attributions"], phi, atol=1e-6)
