"""Conformance of osprey with the stock Triton clients (tritonclient.http / tritonclient.grpc).

Expected outputs come only from <repo>/models/*/reference.json (computed by onnxruntime in
Python); expected metadata comes from reference.json (names, datatypes) and config.pbtxt
(max_batch_size, dims). Tests run in file order; the repository load/unload test is last and
restores the state it changes.
"""

import json
import os
import queue
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.model_config_pb2 as mc
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

REPO = Path(__file__).resolve().parents[3]
MODELS = Path(os.environ.get("OSPREY_MODELS", REPO / "models"))
EXPECTED_MODELS = ("heavy", "identity", "iris", "linear", "mlp", "text_sentiment")
WAIT_S = 30.0  # bound on any wait for an asynchronous answer


# --------------------------------------------------------------------------- reference data


def _load_references():
    refs = {}
    for p in sorted(MODELS.glob("*/reference.json")):
        with open(p) as f:
            refs[p.parent.name] = json.load(f)
    return refs


REFS = _load_references()
CASES = [(m, i) for m, r in REFS.items() for i in range(len(r["cases"]))]
CASE_IDS = [f"{m}-case{i}" for m, i in CASES]


def _parse_pbtxt(text):
    """Minimal protobuf text-format reader: {field: [values]}; messages become dicts."""
    toks = re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,;]|[^\s{}\[\]:,;"]+', re.sub(r"#.*", "", text))
    pos = 0

    def scalar(t):
        if t.startswith('"'):
            return bytes(t[1:-1], "utf-8").decode("unicode_escape")
        try:
            return int(t)
        except ValueError:
            try:
                return float(t)
            except ValueError:
                return t  # enum identifier / true / false

    def value():
        nonlocal pos
        t = toks[pos]
        if t in ("{", "<"):
            pos += 1
            return message("}")
        pos += 1
        return scalar(t)

    def message(end):
        nonlocal pos
        out = {}
        while pos < len(toks) and toks[pos] != end:
            name = toks[pos]
            pos += 1
            if toks[pos] == ":":
                pos += 1
            vals = out.setdefault(name, [])
            if toks[pos] == "[":
                pos += 1
                while toks[pos] != "]":
                    vals.append(value())
                    if toks[pos] == ",":
                        pos += 1
                pos += 1
            else:
                vals.append(value())
            if pos < len(toks) and toks[pos] in (",", ";"):
                pos += 1
        pos += 1
        return out

    return message(None)


def _config(model):
    with open(MODELS / model / "config.pbtxt") as f:
        return _parse_pbtxt(f.read())


def _max_batch_size(model):
    return int(_config(model).get("max_batch_size", [0])[0])


def _config_tensors(model, kind):
    """[(name, TYPE_x, dims)] of config.pbtxt's input or output entries."""
    return [
        (t["name"][0], t["data_type"][0], [int(d) for d in t.get("dims", [])])
        for t in _config(model).get(kind, [])
    ]


def _v2_datatype(type_name):
    return "BYTES" if type_name == "TYPE_STRING" else type_name[len("TYPE_"):]


def _metadata_shape(model, dims):
    return ([-1] if _max_batch_size(model) > 0 else []) + list(dims)


def _to_numpy(t):
    if t["datatype"] == "BYTES":
        arr = np.array([s.encode("utf-8") for s in t["data"]], dtype=np.object_)
    else:
        arr = np.array(t["data"], dtype=triton_to_np_dtype(t["datatype"]))
    return arr.reshape(t["shape"])


def _inputs(mod, tensors, binary=True):
    out = []
    for t in tensors:
        arr = _to_numpy(t) if isinstance(t, dict) else t[1]
        name = t["name"] if isinstance(t, dict) else t[0]
        dt = t["datatype"] if isinstance(t, dict) else "FP32"
        i = mod.InferInput(name, list(arr.shape), dt)
        if mod is httpclient:
            i.set_data_from_numpy(arr, binary_data=binary)
        else:
            i.set_data_from_numpy(arr)
        out.append(i)
    return out


def _requested(mod, names, binary=True):
    if mod is httpclient:
        return [httpclient.InferRequestedOutput(n, binary_data=binary) for n in names]
    return [grpcclient.InferRequestedOutput(n) for n in names]


def _output_names(result):
    resp = result.get_response()
    if isinstance(resp, dict):
        return [o["name"] for o in resp.get("outputs", [])]
    return [o.name for o in resp.outputs]


def _output_datatype(result, name):
    o = result.get_output(name)
    return o["datatype"] if isinstance(o, dict) else o.datatype


def _check_output(result, ref, where=""):
    name = ref["name"]
    got = result.as_numpy(name)
    assert got is not None, f"{where}: output {name!r} missing; got {_output_names(result)}"
    assert _output_datatype(result, name) == ref["datatype"], where
    assert list(got.shape) == ref["shape"], f"{where}: {name} shape {got.shape} != {ref['shape']}"
    dt = ref["datatype"]
    if dt == "BYTES":
        decoded = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in got.ravel()]
        assert decoded == ref["data"], f"{where}: {name}"
    elif dt in ("FP16", "FP32", "FP64"):
        assert got.dtype == triton_to_np_dtype(dt), f"{where}: {name} dtype {got.dtype}"
        want = np.array(ref["data"], dtype=np.float64)
        assert np.allclose(got.ravel().astype(np.float64), want, rtol=1e-5, atol=1e-6), (
            f"{where}: {name} differs: got {got.ravel()[:8]} want {want[:8]}"
        )
    else:
        assert got.dtype == triton_to_np_dtype(dt), f"{where}: {name} dtype {got.dtype}"
        assert got.ravel().tolist() == ref["data"], f"{where}: {name}"


def _check_case(result, case, where=""):
    for ref in case["outputs"]:
        _check_output(result, ref, where)
    assert sorted(_output_names(result)) == sorted(o["name"] for o in case["outputs"]), where


# --------------------------------------------------------------------------- clients


@pytest.fixture(scope="session")
def http(server):
    c = httpclient.InferenceServerClient(server.http_url, network_timeout=WAIT_S)
    yield c
    c.close()


@pytest.fixture(scope="session")
def grpc(server):
    c = grpcclient.InferenceServerClient(server.grpc_url)
    yield c
    c.close()


@pytest.fixture(params=["http", "grpc"])
def proto(request, http, grpc):
    """(module, client) for each protocol."""
    return (httpclient, http) if request.param == "http" else (grpcclient, grpc)


# --------------------------------------------------------------------------- health and metadata


def test_reference_models_present():
    assert sorted(REFS) == sorted(EXPECTED_MODELS), f"reference.json found for {sorted(REFS)}"
    for m, r in REFS.items():
        assert r["cases"], f"{m}: no cases"


def test_server_live_and_ready(proto):
    _, c = proto
    assert c.is_server_live() is True
    assert c.is_server_ready() is True


def test_server_metadata(http, grpc):
    hm = http.get_server_metadata()
    gm = grpc.get_server_metadata()
    assert hm["name"] and hm["version"]
    assert (gm.name, gm.version) == (hm["name"], hm["version"])
    assert sorted(gm.extensions) == sorted(hm["extensions"])
    for ext in ("binary_tensor_data", "model_repository", "statistics", "model_configuration"):
        assert ext in hm["extensions"], f"extension {ext!r} not advertised: {hm['extensions']}"


@pytest.mark.parametrize("model", EXPECTED_MODELS)
def test_model_ready(proto, model):
    _, c = proto
    assert c.is_model_ready(model) is True


def test_model_ready_unknown_model(proto):
    # Triton answers ModelReady for an unknown model with ready=false (HTTP: a non-200 status;
    # gRPC: OK with ready=false), so both stock clients return False rather than raising.
    _, c = proto
    assert c.is_model_ready("no_such_model") is False


@pytest.mark.parametrize("model", EXPECTED_MODELS)
def test_model_metadata(http, grpc, model):
    ref = REFS[model]["cases"][0]
    cfg_in = {n: d for n, _, d in _config_tensors(model, "input")}
    cfg_out = {n: d for n, _, d in _config_tensors(model, "output")}
    want_in = sorted((t["name"], t["datatype"], _metadata_shape(model, cfg_in[t["name"]]))
                     for t in ref["inputs"])
    want_out = sorted((t["name"], t["datatype"], _metadata_shape(model, cfg_out[t["name"]]))
                      for t in ref["outputs"])

    hm = http.get_model_metadata(model)
    assert hm["name"] == model
    assert hm["versions"], hm
    assert sorted((t["name"], t["datatype"], list(t["shape"])) for t in hm["inputs"]) == want_in
    assert sorted((t["name"], t["datatype"], list(t["shape"])) for t in hm["outputs"]) == want_out

    gm = grpc.get_model_metadata(model)
    assert gm.name == model
    assert list(gm.versions) == list(hm["versions"])
    assert gm.platform == hm["platform"]
    assert sorted((t.name, t.datatype, list(t.shape)) for t in gm.inputs) == want_in
    assert sorted((t.name, t.datatype, list(t.shape)) for t in gm.outputs) == want_out


@pytest.mark.parametrize("model", EXPECTED_MODELS)
def test_model_config(http, grpc, model):
    mbs = _max_batch_size(model)
    want_in = sorted(_config_tensors(model, "input"))
    want_out = sorted(_config_tensors(model, "output"))

    hc = http.get_model_config(model)
    assert hc["name"] == model
    assert hc.get("max_batch_size", 0) == mbs
    assert sorted((t["name"], t["data_type"], [int(d) for d in t["dims"]])
                  for t in hc["input"]) == want_in
    assert sorted((t["name"], t["data_type"], [int(d) for d in t["dims"]])
                  for t in hc["output"]) == want_out

    gc = grpc.get_model_config(model).config
    assert gc.name == model
    assert gc.max_batch_size == mbs
    assert sorted((t.name, mc.DataType.Name(t.data_type), list(t.dims)) for t in gc.input) == want_in
    assert sorted((t.name, mc.DataType.Name(t.data_type), list(t.dims)) for t in gc.output) == want_out


# --------------------------------------------------------------------------- inference vs reference

VARIANTS = ["http_binary", "http_json", "http_default_outputs", "grpc", "grpc_default_outputs"]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model,idx", CASES, ids=CASE_IDS)
def test_infer_matches_reference(http, grpc, model, idx, variant):
    case = REFS[model]["cases"][idx]
    names = [o["name"] for o in case["outputs"]]
    where = f"{model} case {idx} via {variant}"
    if variant.startswith("http"):
        binary = variant != "http_json"
        outputs = None if variant == "http_default_outputs" else _requested(httpclient, names, binary)
        result = http.infer(model, _inputs(httpclient, case["inputs"], binary), outputs=outputs)
        if variant == "http_json":
            # JSON asked for: no output may claim a binary payload.
            for o in result.get_response()["outputs"]:
                assert "binary_data_size" not in (o.get("parameters") or {}), (where, o)
    else:
        outputs = None if variant == "grpc_default_outputs" else _requested(grpcclient, names)
        result = grpc.infer(model, _inputs(grpcclient, case["inputs"]), outputs=outputs)
    resp = result.get_response()
    assert (resp["model_name"] if isinstance(resp, dict) else resp.model_name) == model
    _check_case(result, case, where)


@pytest.mark.parametrize("proto_name,binary", [("http", True), ("http", False), ("grpc", True)],
                         ids=["http_binary", "http_json", "grpc"])
@pytest.mark.parametrize("model", [m for m in EXPECTED_MODELS
                                   if m in REFS and len(REFS[m]["cases"][0]["outputs"]) > 1])
def test_subset_of_outputs(http, grpc, model, proto_name, binary):
    case = REFS[model]["cases"][0]
    mod, c = (httpclient, http) if proto_name == "http" else (grpcclient, grpc)
    for want in case["outputs"]:
        result = c.infer(model, _inputs(mod, case["inputs"], binary),
                         outputs=_requested(mod, [want["name"]], binary))
        assert _output_names(result) == [want["name"]]
        _check_output(result, want, f"{model} only {want['name']} via {proto_name}")
        for other in case["outputs"]:
            if other["name"] != want["name"]:
                assert result.as_numpy(other["name"]) is None


# --------------------------------------------------------------------------- concurrency


def _mlp_inputs(n):
    """n distinct single-row mlp inputs derived from the reference input."""
    base = _to_numpy(REFS["mlp"]["cases"][0]["inputs"][0])[:1]
    rng = np.random.default_rng(1234)
    return [(base + rng.normal(0, 1, base.shape)).astype(np.float32) for _ in range(n)]


@pytest.fixture(scope="module")
def mlp_sequential(http):
    """16 distinct inputs and the answers to them, one request at a time."""
    xs = _mlp_inputs(16)
    in_name = REFS["mlp"]["cases"][0]["inputs"][0]["name"]
    out_name = REFS["mlp"]["cases"][0]["outputs"][0]["name"]
    ys = [http.infer("mlp", _inputs(httpclient, [(in_name, x)])).as_numpy(out_name) for x in xs]
    for i in range(len(ys)):
        for j in range(i):
            assert not np.allclose(ys[i], ys[j]), "distinct inputs should give distinct outputs"
    return in_name, out_name, xs, ys


def test_http_async_infer_concurrent(server, mlp_sequential):
    in_name, out_name, xs, ys = mlp_sequential
    c = httpclient.InferenceServerClient(server.http_url, concurrency=4, network_timeout=WAIT_S)
    try:
        pending = [c.async_infer("mlp", _inputs(httpclient, [(in_name, x)]), request_id=str(k),
                                 outputs=_requested(httpclient, [out_name]))
                   for k, x in enumerate(xs)]
        for k, p in enumerate(pending):
            r = p.get_result(block=True, timeout=WAIT_S)
            assert r.get_response()["id"] == str(k)
            assert np.allclose(r.as_numpy(out_name), ys[k], rtol=1e-5, atol=1e-6), f"request {k}"
    finally:
        c.close()


def test_grpc_async_infer_concurrent(grpc, mlp_sequential):
    in_name, out_name, xs, ys = mlp_sequential
    answers = queue.Queue()

    def done(k, result, error):
        answers.put((k, result, error))

    for k, x in enumerate(xs):
        grpc.async_infer("mlp", _inputs(grpcclient, [(in_name, x)]), partial(done, k),
                         request_id=str(k), outputs=_requested(grpcclient, [out_name]))
    seen = set()
    for _ in xs:
        k, r, err = answers.get(timeout=WAIT_S)
        assert err is None, f"request {k}: {err}"
        assert r.get_response().id == str(k)
        assert np.allclose(r.as_numpy(out_name), ys[k], rtol=1e-5, atol=1e-6), f"request {k}"
        seen.add(k)
    assert seen == set(range(len(xs)))


def test_grpc_stream_infer(server):
    # A client of its own: a stream per client, and stop_stream must run even on failure.
    c = grpcclient.InferenceServerClient(server.grpc_url)
    answers = queue.Queue()
    sent = {}
    try:
        c.start_stream(callback=lambda result, error: answers.put((result, error)))
        for model, idx in CASES:
            rid = f"{model}-{idx}"
            case = REFS[model]["cases"][idx]
            sent[rid] = (model, case)
            c.async_stream_infer(model, _inputs(grpcclient, case["inputs"]), request_id=rid,
                                 outputs=_requested(grpcclient, [o["name"] for o in case["outputs"]]))
        got = set()
        for _ in sent:
            r, err = answers.get(timeout=WAIT_S)
            assert err is None, f"stream error: {err}"
            rid = r.get_response().id
            assert rid in sent and rid not in got, f"unexpected or repeated id {rid!r}"
            model, case = sent[rid]
            assert r.get_response().model_name == model
            _check_case(r, case, f"stream {rid}")
            got.add(rid)
        assert got == set(sent)
    finally:
        c.stop_stream()
        c.close()


# --------------------------------------------------------------------------- statistics


def _http_stats(http, model):
    s = [m for m in http.get_inference_statistics(model)["model_stats"] if m["name"] == model]
    assert len(s) == 1, s
    s = s[0]
    return int(s["inference_count"]), int(s["execution_count"]), int(s["inference_stats"]["success"]["count"])


def _grpc_stats(grpc, model):
    s = [m for m in grpc.get_inference_statistics(model).model_stats if m.name == model]
    assert len(s) == 1, s
    s = s[0]
    return s.inference_count, s.execution_count, s.inference_stats.success.count


def test_statistics(proto):
    mod, c = proto
    stats = _http_stats if mod is httpclient else _grpc_stats
    case = max(REFS["mlp"]["cases"], key=lambda k: k["inputs"][0]["shape"][0])
    batch = case["inputs"][0]["shape"][0]
    inf0, exe0, ok0 = stats(c, "mlp")
    _check_case(c.infer("mlp", _inputs(mod, case["inputs"])), case, "stats warm-up")
    inf1, exe1, ok1 = stats(c, "mlp")
    assert inf1 > 0
    # Triton counts each batch element as one inference, and each request as one success.
    assert inf1 - inf0 == batch, (inf0, inf1, batch)
    assert ok1 - ok0 == 1, (ok0, ok1)
    assert exe1 - exe0 >= 1, (exe0, exe1)


# --------------------------------------------------------------------------- errors


def test_wrong_shape_is_rejected(proto):
    mod, c = proto
    ref_in = REFS["mlp"]["cases"][0]["inputs"][0]
    width = _config_tensors("mlp", "input")[0][2][-1]
    bad = np.zeros((1, width - 1), dtype=np.float32)
    with pytest.raises(InferenceServerException) as e:
        c.infer("mlp", _inputs(mod, [(ref_in["name"], bad)]))
    assert ref_in["name"] in e.value.message(), e.value.message()
    if mod is httpclient:
        assert e.value.status() == "400", e.value.status()
    else:
        assert e.value.status() == "StatusCode.INVALID_ARGUMENT", e.value.status()
    assert c.is_server_ready() is True
    assert c.is_model_ready("mlp") is True


def test_unknown_model_is_rejected(proto):
    mod, c = proto
    ref_in = REFS["mlp"]["cases"][0]["inputs"][0]
    with pytest.raises(InferenceServerException) as e:
        c.infer("no_such_model", _inputs(mod, [ref_in]))
    assert "no_such_model" in e.value.message(), e.value.message()
    if mod is httpclient:
        assert e.value.status() in ("400", "404"), e.value.status()
    else:
        assert e.value.status() in ("StatusCode.NOT_FOUND", "StatusCode.INVALID_ARGUMENT",
                                    "StatusCode.UNAVAILABLE"), e.value.status()
    assert c.is_server_ready() is True


# --------------------------------------------------------------------------- repository (last)


def _index_states(c):
    idx = c.get_model_repository_index()
    if isinstance(idx, list):  # HTTP
        return {(m["name"]): m.get("state", "") for m in idx}
    return {m.name: m.state for m in idx.models}


def test_repository_index(proto):
    _, c = proto
    states = _index_states(c)
    for m in EXPECTED_MODELS:
        assert states.get(m) == "READY", states


@pytest.mark.parametrize("unload_via,load_via", [("http", "grpc"), ("grpc", "http")])
def test_repository_unload_and_load(http, grpc, unload_via, load_via):
    clients = {"http": (httpclient, http), "grpc": (grpcclient, grpc)}
    case = REFS["iris"]["cases"][0]
    assert http.is_model_ready("iris") is True
    clients[unload_via][1].unload_model("iris")
    try:
        assert http.is_model_ready("iris") is False
        assert grpc.is_model_ready("iris") is False
        for mod, c in clients.values():
            with pytest.raises(InferenceServerException):
                c.infer("iris", _inputs(mod, case["inputs"]))
        assert _index_states(http).get("iris") != "READY"
        # As in Triton, an unloaded model is no longer a loaded one: the server stays ready.
        assert http.is_server_ready() is True
        # Other models keep serving.
        mlp = REFS["mlp"]["cases"][0]
        _check_case(grpc.infer("mlp", _inputs(grpcclient, mlp["inputs"])), mlp, "mlp while iris unloaded")
    finally:
        clients[load_via][1].load_model("iris")
    assert http.is_model_ready("iris") is True
    assert grpc.is_model_ready("iris") is True
    assert http.is_server_ready() is True
    assert _index_states(grpc).get("iris") == "READY"
    for mod, c in clients.values():
        _check_case(c.infer("iris", _inputs(mod, case["inputs"])), case, f"iris reloaded via {load_via}")
