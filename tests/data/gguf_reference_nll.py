#!/usr/bin/python3
"""Float64 reference NLL of a Llama GGUF file, independent of MoA.cpp's code.

    PYTHONPATH=/work/llamacpp/gguf-py /usr/bin/python3 tests/data/gguf_reference_nll.py \
        --ids IDS.txt --out REF.json FILE.gguf [FILE.gguf ...]

For each file: gguf-py's GGUFReader reads it and gguf.quants.dequantize turns every tensor into
f32 values (whatever type llama.cpp's tools wrote), which are then widened to float64 and run
through a plain Llama forward pass in float64 numpy: RMSNorm, grouped-query causal attention,
SwiGLU. RoPE is applied the way llama.cpp applies it to GGUF tensors (adjacent pairs of each
head's dimensions), so the q/k row permutation of the file never has to be undone here: the
permuted rows and llama.cpp's pairing give the same dot products as the Hugging Face layout and
its rotate-half pairing. llama3 rope_freqs and rope scaling are not handled (the files this
script checks have neither; it refuses them).

The output JSON maps each file's base name to {"type_counts": {...}, "nll_per_token": [...]}:
the NLL of ids[k] given ids[0..k) for k = 1..len-1 (what `moa score --ids` reports with its
default --from 1).
"""

import argparse
import json
import os
import sys

import types

import numpy as np

# gguf-py's package __init__ imports sentencepiece at module level; nothing here uses it.
if "sentencepiece" not in sys.modules:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.ModuleType("sentencepiece")
        sys.modules["sentencepiece"].SentencePieceProcessor = None

from gguf import GGUFReader, GGMLQuantizationType  # noqa: E402
from gguf.quants import dequantize  # noqa: E402


def field_value(reader, key, default=None):
    f = reader.get_field(key)
    if f is None:
        if default is None:
            sys.exit(f"{key}: missing")
        return default
    v = f.parts[f.data[0]]
    if f.types and f.types[0].name == "STRING":
        return bytes(v).decode("utf-8")
    return v[0].item()


def tensors_f64(reader):
    out, counts = {}, {}
    for t in reader.tensors:
        qt = GGMLQuantizationType(t.tensor_type)
        counts[qt.name] = counts.get(qt.name, 0) + 1
        w = dequantize(t.data, qt).astype(np.float64)
        # GGUF shapes are ggml order (ne[0] innermost); numpy wants them reversed.
        out[t.name] = w.reshape([int(d) for d in reversed(t.shape)])
    return out, counts


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_adjacent(x, theta):
    # x: (T, heads, d). Pairs (2i, 2i+1) rotate by pos * theta^(-2i/d).
    T, _, d = x.shape
    inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = a * c - b * s
    y[..., 1::2] = a * s + b * c
    return y


def forward_nll(reader, ids):
    arch = field_value(reader, "general.architecture")
    if arch != "llama":
        sys.exit(f"general.architecture {arch}: only llama is handled")
    L = field_value(reader, f"{arch}.block_count")
    H = field_value(reader, f"{arch}.attention.head_count")
    KV = field_value(reader, f"{arch}.attention.head_count_kv")
    eps = field_value(reader, f"{arch}.attention.layer_norm_rms_epsilon")
    theta = field_value(reader, f"{arch}.rope.freq_base", 10000.0)
    if reader.get_field(f"{arch}.rope.scaling.type") is not None:
        sys.exit("rope scaling is not handled")
    W, counts = tensors_f64(reader)
    if "rope_freqs.weight" in W:
        sys.exit("rope_freqs is not handled")
    emb = W["token_embd.weight"]
    out_w = W.get("output.weight", emb)
    T = len(ids)
    x = emb[np.array(ids)]
    d = emb.shape[1] // H
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(L):
        p = f"blk.{l}."
        h = rms_norm(x, W[p + "attn_norm.weight"], eps)
        q = rope_adjacent((h @ W[p + "attn_q.weight"].T).reshape(T, H, d), theta)
        k = rope_adjacent((h @ W[p + "attn_k.weight"].T).reshape(T, KV, d), theta)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, KV, d)
        att = np.empty((T, H, d))
        for hh in range(H):
            g = hh // (H // KV)
            s = q[:, hh, :] @ k[:, g, :].T / np.sqrt(d) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            att[:, hh, :] = (s / s.sum(axis=1, keepdims=True)) @ v[:, g, :]
        x = x + att.reshape(T, H * d) @ W[p + "attn_output.weight"].T
        h = rms_norm(x, W[p + "ffn_norm.weight"], eps)
        gate = h @ W[p + "ffn_gate.weight"].T
        up = h @ W[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ W[p + "ffn_down.weight"].T
    logits = rms_norm(x, W["output_norm.weight"], eps) @ out_w.T
    m = logits.max(axis=1, keepdims=True)
    logz = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    nll = [float(logz[k - 1] - logits[k - 1, ids[k]]) for k in range(1, T)]
    return nll, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--ids", required=True, help="whitespace-separated token ids")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ids = [int(t) for t in open(a.ids).read().split()]
    res = {}
    for f in a.files:
        nll, counts = forward_nll(GGUFReader(f), ids)
        res[os.path.basename(f)] = {"type_counts": counts, "nll_per_token": nll}
        print(f"{f}: {len(nll)} tokens, mean NLL {np.mean(nll):.6f}, types {counts}", file=sys.stderr)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
