#!/usr/bin/python3
"""gguf-py's reading of the GGUF files `moa convert` writes: the oracle of tests/test_convert.cpp.

    PYTHONPATH=/path/to/llama.cpp/gguf-py /usr/bin/python3 tests/data/make_convert_oracle.py \
        build/bin/moa

For each case below it runs `moa convert -m DIR --out F --type T`, reads F with gguf.GGUFReader
(llama.cpp's own reader) and records in tests/data/convert/oracle.json, per case:
  metadata: every key (gguf-py's GGUF.* header pseudo-keys left out) with its value type and its
            value (scalars, strings), or for arrays the element type, count and the sha256 of the
            elements as the file encodes them (scalars: little-endian bytes; strings: u64 length +
            bytes each);
  tensors:  in file order, name, ggml type name, shape (ne order: values per row first) and the
            sha256 of the raw bytes.
The test converts the same inputs again and checks every entry, so a file that gguf-py reads
differently from what we meant fails there.

The fixture model tests/data/convert/tiny/ (a tied-embedding Llama with GQA, BF16 weights, the
byte-level tokenizer of tests/data/tokenizers/bytelevel and a tokenizer_config.json with a chat
template) is written first when absent (seeded; --remake-model rewrites it).
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import types

import numpy as np

if "sentencepiece" not in sys.modules:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.ModuleType("sentencepiece")
        sys.modules["sentencepiece"].SentencePieceProcessor = None

import gguf  # noqa: E402
from gguf import GGUFValueType as V  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "convert", "tiny")
OUT = os.path.join(HERE, "convert", "oracle.json")
SEED = 1903
CASES = [("convert/tiny", t) for t in ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m"]] + \
        [("gguf/qwen2", t) for t in ["f32", "q8_0", "q4_k_m"]]

CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
    "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": 258, "max_position_embeddings": 128,
    "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": True,
    "hidden_act": "silu", "torch_dtype": "bfloat16", "bos_token_id": 256, "eos_token_id": 257,
}
TOKENIZER_CONFIG = {
    "add_bos_token": True, "add_eos_token": False, "bos_token": "<|bos|>", "eos_token": "<|eos|>",
    "chat_template": "{% for m in messages %}<|bos|>{{ m['content'] }}<|eos|>{% endfor %}",
}


def bf16_bytes(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()


def make_tiny():
    rng = np.random.default_rng(SEED)
    c = CONFIG
    C, F, L, V_ = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    D = C // c["num_attention_heads"]
    KD = c["num_key_value_heads"] * D
    shapes = {"model.embed_tokens.weight": (V_, C), "model.norm.weight": (C,)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
                       p + "self_attn.q_proj.weight": (C, C), p + "self_attn.k_proj.weight": (KD, C),
                       p + "self_attn.v_proj.weight": (KD, C), p + "self_attn.o_proj.weight": (C, C),
                       p + "mlp.gate_proj.weight": (F, C), p + "mlp.up_proj.weight": (F, C),
                       p + "mlp.down_proj.weight": (C, F)})
    header, blobs, off = {}, [], 0
    for name in sorted(shapes):
        shape = shapes[name]
        x = 1 + 0.1 * rng.standard_normal(shape) if len(shape) == 1 else 0.2 * rng.standard_normal(shape)
        b = bf16_bytes(x)
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(TINY, exist_ok=True)
    with open(os.path.join(TINY, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    with open(os.path.join(TINY, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(TINY, "tokenizer_config.json"), "w") as f:
        json.dump(TOKENIZER_CONFIG, f, indent=2)
        f.write("\n")
    shutil.copy(os.path.join(HERE, "tokenizers", "bytelevel", "tokenizer.json"), TINY)


SCALAR_NP = {V.UINT8: "<u1", V.INT8: "<i1", V.UINT16: "<u2", V.INT16: "<i2", V.UINT32: "<u4",
             V.INT32: "<i4", V.FLOAT32: "<f4", V.BOOL: "<u1", V.UINT64: "<u8", V.INT64: "<i8",
             V.FLOAT64: "<f8"}


def field_entry(f):
    t = f.types[0]
    if t == V.ARRAY:
        # gguf-py leaves the element type of an empty array out of f.types; it is in the parts.
        elem = f.types[1] if len(f.types) > 1 else V(int(f.parts[3][0]))
        vals = [f.parts[i] for i in f.data]
        if elem == V.STRING:
            raw = b"".join(struct.pack("<Q", len(bytes(v))) + bytes(v) for v in vals)
        else:
            raw = b"".join(np.asarray(v).astype(SCALAR_NP[elem]).tobytes() for v in vals)
        return {"type": "ARRAY", "elem": elem.name, "count": len(f.data),
                "sha256": hashlib.sha256(raw).hexdigest()}
    v = f.parts[f.data[0]]
    if t == V.STRING:
        return {"type": "STRING", "value": bytes(v).decode("utf-8")}
    x = v[0].item()
    if t == V.BOOL:
        x = bool(x)
    return {"type": t.name, "value": x}


def read_case(path):
    r = gguf.GGUFReader(path)
    meta = {k: field_entry(f) for k, f in r.fields.items() if not k.startswith("GGUF.")}
    tensors = [{"name": t.name, "type": t.tensor_type.name, "ne": [int(n) for n in t.shape],
                "sha256": hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest()}
               for t in r.tensors]
    return {"metadata": meta, "tensors": tensors}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    moa = sys.argv[1]
    if "--remake-model" in sys.argv or not os.path.exists(os.path.join(TINY, "config.json")):
        make_tiny()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model, typ in CASES:
            path = os.path.join(tmp, "out.gguf")
            subprocess.run([moa, "convert", "-m", os.path.join(HERE, model), "--out", path,
                            "--type", typ], check=True, stderr=subprocess.DEVNULL)
            out[f"{model} {typ}"] = read_case(path)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(out)} cases)")


if __name__ == "__main__":
    main()
