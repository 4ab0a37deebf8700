#!/usr/bin/python3
"""GGUF fixtures for tests/test_gguf.cpp, written by llama.cpp's own gguf-py (the independent
reader/writer), so that our reader and dequantisers are checked against another implementation.

How to run (Debian's python3-numpy; gguf-py from a llama.cpp source tree, no install needed):

    PYTHONPATH=/path/to/llama.cpp/gguf-py /usr/bin/python3 tests/data/make_gguf_fixtures.py

Seeded (SEED below): re-running rewrites byte-identical files. Everything written is read back with
gguf.GGUFReader and checked before the script ends; it aborts on any mismatch.

Files under tests/data/gguf/:

  types.gguf      one 2-D tensor per ggml type we compute with, shape (rows 3, cols 512), named by
                  the type ("Q4_K", ...). F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 are random normal
                  data quantised by gguf.quants.quantize. Types gguf-py cannot quantise (Q4_K,
                  Q5_K, Q6_K) are random raw blocks whose f16 scales are random finite halves
                  (normal and subnormal, either sign; never Inf/NaN). The legacy block types also get
                  a random-raw twin named "<TYPE>.raw" (every bit pattern of the quants occurs).
  expected.gguf   for every tensor of types.gguf, an F32 tensor of the same name and shape holding
                  gguf.quants.dequantize of its bytes: what our dequantisers must produce bit for bit.
  metadata.gguf   one metadata key per GGUF value type (meta.u8 ... meta.f64, meta.bool,
                  meta.string), arrays of every element type (arr.u8 ...), an array of strings, an
                  array of arrays, an empty array; general.alignment = 64; two small F32 tensors
                  ("a": 3 values, "b": 2x5) so that the 64-byte alignment is exercised. The test
                  hard-codes the same values (see META below).
  llama/ llama3/ qwen2/
                  tiny random models (see VARIANTS) as Hugging Face checkpoints (config.json +
                  model.safetensors, F32) and their conversion to GGUF the way
                  convert_hf_to_gguf.py does it (llama: q/k rows permuted for llama.cpp's RoPE,
                  llama3 scaling as a rope_freqs tensor; qwen2: unpermuted, with q/k/v biases;
                  tensor names token_embd / blk.N.* / output_norm / output, <arch>.* keys):
                    <variant>/model-f32.gguf  every tensor F32
                    llama/model-mixed.gguf    token_embd F16, attention Q8_0, ffn_gate/up Q4_1,
                                              ffn_down Q5_0, output Q8_0, norms F32
                  The test checks each model-f32.gguf gives its safetensors model's logits, and
                  model-mixed.gguf the logits of its own weights dequantised to f32.
"""
import json
import math
import os
import struct
import sys

import types

import numpy as np

# gguf-py's package __init__ imports its vocab module, which imports sentencepiece at module level;
# nothing here uses it, so a placeholder module lets the script run without python3-sentencepiece.
if "sentencepiece" not in sys.modules:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.ModuleType("sentencepiece")
        sys.modules["sentencepiece"].SentencePieceProcessor = None

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import GGUFValueType as V  # noqa: E402

SEED = 20250219
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf")

ROWS, COLS = 3, 512
QUANTISABLE = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
RAW_ONLY = [T.Q4_K, T.Q5_K, T.Q6_K]
LEGACY = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
# Byte offsets of the f16 scales inside each block (d, and m / dmin where present).
HALF_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


class TypedArray:
    """A metadata array with an explicit element type (GGUFWriter infers only a few types and
    refuses empty arrays)."""

    def __init__(self, elem, values):
        self.elem, self.values = elem, values


class Writer(gguf.GGUFWriter):
    def _pack_val(self, val, vtype, add_vtype):
        if not isinstance(val, TypedArray):
            return super()._pack_val(val, vtype, add_vtype)
        out = bytearray()
        if add_vtype:
            out += self._pack("I", V.ARRAY)
        out += self._pack("I", val.elem)
        out += self._pack("Q", len(val.values))
        for item in val.values:
            out += self._pack_val(item, val.elem, add_vtype=False)
        return out


def finite_halves(rng, n):
    """n random f16 bit patterns, any sign, exponent 0..30 (subnormal or normal, never Inf/NaN),
    scaled down to keep dequantised values moderate (exponent <= 15 means |h| < 2)."""
    sign = rng.integers(0, 2, n, dtype=np.uint16) << 15
    exp = rng.integers(0, 16, n, dtype=np.uint16) << 10
    mant = rng.integers(0, 1024, n, dtype=np.uint16)
    return (sign | exp | mant).astype(np.uint16)


def random_blocks(rng, qtype, rows, cols):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block
    raw = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    for off in HALF_OFFSETS[qtype]:
        raw[:, off:off + 2] = finite_halves(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(rows, cols // block * size)


def write(path, build):
    w = Writer(path, "test")
    build(w)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_types(rng):
    tensors = {}  # name -> (qtype, stored array as written)
    for qt in QUANTISABLE:
        data = rng.standard_normal((ROWS, COLS)).astype(np.float32)
        tensors[qt.name] = (qt, gguf.quants.quantize(data, qt))
    for qt in RAW_ONLY:
        tensors[qt.name] = (qt, random_blocks(rng, qt, ROWS, COLS))
    for qt in LEGACY:
        tensors[qt.name + ".raw"] = (qt, random_blocks(rng, qt, ROWS, COLS))

    def build_types(w):
        for name, (qt, arr) in tensors.items():
            if qt in (T.F32, T.F16):
                w.add_tensor(name, arr)
            else:
                w.add_tensor(name, arr.view(np.uint8), raw_dtype=qt)

    def build_expected(w):
        for name, (qt, arr) in tensors.items():
            deq = gguf.quants.dequantize(arr.view(np.uint8) if qt not in (T.F32, T.F16) else arr, qt)
            assert deq.shape == (ROWS, COLS) and deq.dtype == np.float32, (name, deq.shape)
            assert np.all(np.isfinite(deq)), name
            w.add_tensor(name, np.ascontiguousarray(deq))

    write(os.path.join(OUT, "types.gguf"), build_types)
    write(os.path.join(OUT, "expected.gguf"), build_expected)
    # Read back with gguf-py's reader: the types file holds what we wrote, and dequantising what
    # the reader returns gives expected.gguf.
    rt = gguf.GGUFReader(os.path.join(OUT, "types.gguf"))
    re = {t.name: t for t in gguf.GGUFReader(os.path.join(OUT, "expected.gguf")).tensors}
    assert len(rt.tensors) == len(tensors)
    for t in rt.tensors:
        qt, _ = tensors[t.name]
        assert t.tensor_type == qt, t.name
        deq = gguf.quants.dequantize(t.data, qt).reshape(ROWS, COLS)
        assert np.array_equal(deq.view(np.uint32), np.asarray(re[t.name].data).view(np.uint32)), t.name


# Metadata values; tests/test_gguf.cpp hard-codes the same ones.
META = [
    ("meta.u8", V.UINT8, 200), ("meta.i8", V.INT8, -100), ("meta.u16", V.UINT16, 60000),
    ("meta.i16", V.INT16, -30000), ("meta.u32", V.UINT32, 4000000000),
    ("meta.i32", V.INT32, -2000000000), ("meta.f32", V.FLOAT32, 3.14159),
    ("meta.bool", V.BOOL, True), ("meta.string", V.STRING, "h\u00e9llo w\u00f6rld \U0001F600"),
    ("meta.u64", V.UINT64, (1 << 63) + 5), ("meta.i64", V.INT64, -(1 << 62) - 3),
    ("meta.f64", V.FLOAT64, 2.718281828459045),
]
ARRAYS = [
    ("arr.u8", V.UINT8, [0, 1, 255]), ("arr.i8", V.INT8, [-128, 0, 127]),
    ("arr.u16", V.UINT16, [0, 65535]), ("arr.i16", V.INT16, [-32768, 32767]),
    ("arr.u32", V.UINT32, [0, 4294967295]), ("arr.i32", V.INT32, [-2147483648, 2147483647]),
    ("arr.f32", V.FLOAT32, [0.5, -1.25, 1e-30]), ("arr.bool", V.BOOL, [True, False, True]),
    ("arr.u64", V.UINT64, [0, (1 << 64) - 1]), ("arr.i64", V.INT64, [-(1 << 63), (1 << 63) - 1]),
    ("arr.f64", V.FLOAT64, [1e300, -2.5]), ("arr.string", V.STRING, ["", "a", "\u00fcber"]),
    ("arr.empty", V.INT32, []),
]


def field_value(f):
    """A GGUFReader field's value as Python data (arrays of arrays come back flattened)."""
    if f.types[0] == V.STRING:
        return bytes(f.parts[f.data[0]]).decode()
    if f.types[0] != V.ARRAY:
        return f.parts[f.data[0]][0].item()
    if f.types[-1] == V.STRING:
        return [bytes(f.parts[i]).decode() for i in f.data]
    return [f.parts[i][0].item() for i in f.data]


def make_metadata():
    def build(w):
        w.add_custom_alignment(64)
        for key, vt, val in META:
            w.add_key_value(key, val, vt)
        for key, vt, vals in ARRAYS:
            w.add_key_value(key, TypedArray(vt, vals), V.ARRAY)
        nested = TypedArray(V.ARRAY, [TypedArray(V.INT32, [1, 2]), TypedArray(V.INT32, [3]),
                                      TypedArray(V.INT32, [])])
        w.add_key_value("arr.nested", nested, V.ARRAY)
        w.add_tensor("a", np.array([1.0, 2.0, 3.0], dtype=np.float32))
        w.add_tensor("b", np.arange(10, dtype=np.float32).reshape(2, 5))

    path = os.path.join(OUT, "metadata.gguf")
    write(path, build)
    r = gguf.GGUFReader(path)
    for key, vt, val in META:
        f = r.fields[key]
        assert f.types == [vt], key
        got = field_value(f)
        if vt == V.FLOAT32:
            assert got == float(np.float32(val)), key
        else:
            assert got == val, (key, got)
    for key, vt, vals in ARRAYS:
        f = r.fields[key]
        assert f.types[0] == V.ARRAY and (not vals or f.types[1] == vt), key
        got = field_value(f)
        want = [float(np.float32(v)) for v in vals] if vt == V.FLOAT32 else vals
        assert list(got) == want, (key, got)
    assert field_value(r.fields["arr.nested"]) == [1, 2, 3]
    assert field_value(r.fields["general.alignment"]) == 64
    for t in r.tensors:
        assert t.data_offset % 64 == 0, t.name


# ---- tiny Llama-family models -----------------------------------------------------------

# name: (HF architecture, GGUF architecture, sizes, rope, tied, q/k/v biases, GGUF files)
VARIANTS = {
    # GQA, untied, plain RoPE: an F32 conversion and a mixed-quantisation one.
    "llama": dict(arch="LlamaForCausalLM", gguf_arch="llama", vocab=64, hidden=32, heads=4,
                  kv_heads=2, head_dim=8, inter=64, layers=2, ctx=64, theta=10000.0, eps=1e-5,
                  tied=False, bias=False, llama3=False, files=["f32", "mixed"]),
    # MQA, tied embeddings (no output tensor), llama3 RoPE scaling (a rope_freqs tensor).
    "llama3": dict(arch="LlamaForCausalLM", gguf_arch="llama", vocab=64, hidden=32, heads=2,
                   kv_heads=1, head_dim=16, inter=64, layers=1, ctx=64, theta=500000.0, eps=1e-5,
                   tied=True, bias=False, llama3=True, files=["f32"]),
    # Qwen2: q/k/v biases, no q/k permutation.
    "qwen2": dict(arch="Qwen2ForCausalLM", gguf_arch="qwen2", vocab=64, hidden=32, heads=4,
                  kv_heads=2, head_dim=8, inter=64, layers=1, ctx=64, theta=1000000.0, eps=1e-6,
                  tied=False, bias=True, llama3=False, files=["f32"]),
}
LLAMA3_ROPE = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


def hf_config(c):
    j = {
        "architectures": [c["arch"]], "model_type": c["gguf_arch"], "hidden_size": c["hidden"],
        "intermediate_size": c["inter"], "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"], "num_key_value_heads": c["kv_heads"],
        "vocab_size": c["vocab"], "max_position_embeddings": c["ctx"], "rms_norm_eps": c["eps"],
        "rope_theta": c["theta"], "tie_word_embeddings": c["tied"], "hidden_act": "silu",
        "torch_dtype": "float32",
    }
    if c["head_dim"] != c["hidden"] // c["heads"]:
        j["head_dim"] = c["head_dim"]
    if c["llama3"]:
        j["rope_scaling"] = LLAMA3_ROPE
    return j


def hf_weights(rng, c):
    C, F, V_, QD, KD = c["hidden"], c["inter"], c["vocab"], c["heads"] * c["head_dim"], \
        c["kv_heads"] * c["head_dim"]

    def randn(*shape, std=0.1):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    w = {"model.embed_tokens.weight": randn(V_, C, std=0.5)}
    for i in range(c["layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = (1 + randn(C)).astype(np.float32)
        w[p + "self_attn.q_proj.weight"] = randn(QD, C, std=0.3)
        w[p + "self_attn.k_proj.weight"] = randn(KD, C, std=0.3)
        w[p + "self_attn.v_proj.weight"] = randn(KD, C, std=0.3)
        if c["bias"]:
            w[p + "self_attn.q_proj.bias"] = randn(QD, std=0.3)
            w[p + "self_attn.k_proj.bias"] = randn(KD, std=0.3)
            w[p + "self_attn.v_proj.bias"] = randn(KD, std=0.3)
        w[p + "self_attn.o_proj.weight"] = randn(C, QD, std=0.3)
        w[p + "post_attention_layernorm.weight"] = (1 + randn(C)).astype(np.float32)
        w[p + "mlp.gate_proj.weight"] = randn(F, C, std=0.3)
        w[p + "mlp.up_proj.weight"] = randn(F, C, std=0.3)
        w[p + "mlp.down_proj.weight"] = randn(C, F, std=0.3)
    w["model.norm.weight"] = (1 + randn(C)).astype(np.float32)
    if not c["tied"]:
        w["lm_head.weight"] = randn(V_, C, std=0.3)
    return w


def write_safetensors(path, tensors):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name in sorted(tensors):
        t = tensors[name]
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name in sorted(tensors):
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def permute(weights, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute (n_head already the KV head count for k)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def llama3_rope_factors(c):
    """LlamaModel.generate_extra_tensors, in float32 as torch computes it there; the converter
    reads original_max_position_embeddings from the top level of config.json (absent: 8192)."""
    base, dim = c["theta"], c["head_dim"]
    freqs = (1.0 / (np.float32(base) ** (np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim))))
    freqs = freqs.astype(np.float32)
    factor, low, high = LLAMA3_ROPE["factor"], LLAMA3_ROPE["low_freq_factor"], \
        LLAMA3_ROPE["high_freq_factor"]
    old = 8192
    low_wl, high_wl = old / low, old / high
    out = []
    for f in freqs:
        wl = np.float32(2 * math.pi) / f
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(factor)
        else:
            smooth = (old / wl - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


GGUF_NAMES = {
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias", "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight", "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
}

MIXED = {"token_embd.weight": T.F16, "attn_q.weight": T.Q8_0, "attn_k.weight": T.Q8_0,
         "attn_v.weight": T.Q8_0, "attn_output.weight": T.Q8_0, "ffn_gate.weight": T.Q4_1,
         "ffn_up.weight": T.Q4_1, "ffn_down.weight": T.Q5_0, "output.weight": T.Q8_0}


def gguf_tensors(w, c):
    out = {"token_embd.weight": w["model.embed_tokens.weight"]}
    permuted = c["gguf_arch"] == "llama"
    for i in range(c["layers"]):
        for hf, gg in GGUF_NAMES.items():
            t = w.get(f"model.layers.{i}.{hf}")
            if t is None:
                continue
            if permuted and hf.startswith("self_attn.q_proj"):
                t = permute(t, c["heads"])
            elif permuted and hf.startswith("self_attn.k_proj"):
                t = permute(t, c["kv_heads"])
            out[f"blk.{i}.{gg}"] = t
    out["output_norm.weight"] = w["model.norm.weight"]
    if not c["tied"]:
        out["output.weight"] = w["lm_head.weight"]
    if c["llama3"]:
        out["rope_freqs.weight"] = llama3_rope_factors(c)
    return out


def write_model_gguf(path, tensors, c, mixed):
    def build(w):
        w.arch = c["gguf_arch"]
        w.kv_data[0].pop("general.architecture", None)
        w.add_architecture()
        w.add_name("tiny-test-model")
        w.add_context_length(c["ctx"])
        w.add_embedding_length(c["hidden"])
        w.add_block_count(c["layers"])
        w.add_feed_forward_length(c["inter"])
        w.add_head_count(c["heads"])
        w.add_head_count_kv(c["kv_heads"])
        if c["head_dim"] != c["hidden"] // c["heads"]:
            w.add_key_length(c["head_dim"])
            w.add_value_length(c["head_dim"])
        w.add_rope_freq_base(c["theta"])
        w.add_layer_norm_rms_eps(c["eps"])
        w.add_rope_dimension_count(c["head_dim"])
        w.add_vocab_size(c["vocab"])
        w.add_file_type(1 if mixed else 0)
        for name, t in tensors.items():
            qt = T.F32
            if mixed:
                qt = next((q for suffix, q in MIXED.items() if name.endswith(suffix)), T.F32)
            if qt == T.F32:
                w.add_tensor(name, t)
            elif qt == T.F16:
                w.add_tensor(name, t.astype(np.float16))
            else:
                w.add_tensor(name, gguf.quants.quantize(t, qt), raw_dtype=qt)

    write(path, build)
    r = gguf.GGUFReader(path)
    assert field_value(r.fields["general.architecture"]) == c["gguf_arch"]
    assert len(r.tensors) == len(tensors)


def make_models(rng):
    for name, c in VARIANTS.items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        w = hf_weights(rng, c)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(hf_config(c), f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(d, "model.safetensors"), w)
        g = gguf_tensors(w, c)
        for kind in c["files"]:
            write_model_gguf(os.path.join(d, f"model-{kind}.gguf"), g, c, mixed=kind == "mixed")


def main():
    os.makedirs(OUT, exist_ok=True)
    print(f"make_gguf_fixtures: seed {SEED}", file=sys.stderr)
    rng = np.random.default_rng(SEED)
    make_types(rng)
    make_metadata()
    make_models(rng)
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    print(f"make_gguf_fixtures: wrote {OUT} ({total} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
