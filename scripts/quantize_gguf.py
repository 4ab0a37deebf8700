#!/usr/bin/python3
"""Quantise a small Llama checkpoint (Hugging Face directory: config.json + one F32
model.safetensors) into a GGUF file whose matrices are all one legacy block type (Q8_0, Q4_0,
Q4_1, Q5_0 or Q5_1: the types gguf-py can quantise), for checking the quantised decode kernels on
a real model (docs/PERF.md, moa score with and without --h2o 1). Norms stay F32. The tokenizer is
not embedded: tokenize with the checkpoint directory (moa tokenize) and score with --ids.

    PYTHONPATH=/path/to/llama.cpp/gguf-py /usr/bin/python3 scripts/quantize_gguf.py \
        models/moa-tiny Q8_0 /tmp/moa-tiny-q8_0.gguf

Tensor names and the q/k row permutation are those of llama.cpp's convert_hf_to_gguf.py (our
GGUF loader undoes the permutation). Every matrix needs its column count a multiple of 32.
"""
import json
import struct
import sys
import types

import numpy as np

# gguf-py imports sentencepiece at module level; nothing here needs it.
if "sentencepiece" not in sys.modules:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.ModuleType("sentencepiece")
        sys.modules["sentencepiece"].SentencePieceProcessor = None

import gguf  # noqa: E402

NAMES = {
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if info["dtype"] != "F32":
                sys.exit(f"{path}: {name} is {info['dtype']}, expected F32")
            a, b = info["data_offsets"]
            f.seek(base + a)
            out[name] = np.frombuffer(f.read(b - a), dtype="<f4").reshape(info["shape"])
        return out


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, qname, dst = sys.argv[1:]
    qt = gguf.GGMLQuantizationType[qname]
    c = json.load(open(f"{src}/config.json"))
    w = read_safetensors(f"{src}/model.safetensors")
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    head_dim = c.get("head_dim", c["hidden_size"] // heads)
    t = {"token_embd.weight": w["model.embed_tokens.weight"]}
    for i in range(c["num_hidden_layers"]):
        for hf, gg in NAMES.items():
            x = w[f"model.layers.{i}.{hf}"]
            if hf.startswith("self_attn.q_proj"):
                x = permute(x, heads)
            elif hf.startswith("self_attn.k_proj"):
                x = permute(x, kv)
            t[f"blk.{i}.{gg}"] = x
    t["output_norm.weight"] = w["model.norm.weight"]
    if not c.get("tie_word_embeddings", False):
        t["output.weight"] = w["lm_head.weight"]

    g = gguf.GGUFWriter(dst, "llama")
    g.add_name(c.get("_name_or_path", "model"))
    g.add_context_length(c["max_position_embeddings"])
    g.add_embedding_length(c["hidden_size"])
    g.add_block_count(c["num_hidden_layers"])
    g.add_feed_forward_length(c["intermediate_size"])
    g.add_head_count(heads)
    g.add_head_count_kv(kv)
    if head_dim != c["hidden_size"] // heads:
        g.add_key_length(head_dim)
        g.add_value_length(head_dim)
    g.add_rope_freq_base(c.get("rope_theta", 10000.0))
    g.add_layer_norm_rms_eps(c["rms_norm_eps"])
    g.add_rope_dimension_count(head_dim)
    g.add_vocab_size(c["vocab_size"])
    for name, x in t.items():
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim == 2:
            g.add_tensor(name, gguf.quants.quantize(x, qt), raw_dtype=qt)
        else:
            g.add_tensor(name, x)
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()
    print(f"{dst}: {len(t)} tensors, matrices {qname}")


if __name__ == "__main__":
    main()
