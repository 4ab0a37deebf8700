#!/usr/bin/python3
"""Convert a MoA.cpp / Hugging Face Llama checkpoint directory to GGUF for llama.cpp.

    /usr/bin/python3 bench/llamacpp/hf_to_gguf.py --llama-cpp /work/llamacpp IN_DIR OUT.gguf

IN_DIR holds config.json and model.safetensors (or model.safetensors.index.json + shards), as
written by `moa init`. Only the Llama layout is handled (LlamaForCausalLM, no biases). Uses the
`gguf` package from the llama.cpp checkout (LLAMA_CPP/gguf-py) and numpy; safetensors are read
here directly (memory-mapped), there is no safetensors package.

What it writes:
  * weights keep their dtype: F32 stays F32, BF16 stays BF16, F16 stays F16. 1-D tensors (the
    RMSNorm weights) are written as F32, as llama.cpp expects; BF16/F16 -> F32 is exact.
  * q_proj / k_proj rows are permuted from the Hugging Face rotate-half RoPE layout to the
    interleaved (adjacent pairs) layout that llama.cpp's LLM_ARCH_LLAMA uses, per head.
  * output.weight is omitted when the embeddings are tied (llama.cpp reuses token_embd).
  * llama3 rope scaling becomes a rope_freqs tensor; linear scaling becomes rope.scaling.*.
  * a synthetic vocabulary that matches the byte-level tokenizer `moa init` writes: ids 0..255
    are the 256 bytes (GPT-2 byte-to-unicode characters), 256 "<|bos|>", 257 "<|eos|>", and the
    remaining ids up to vocab_size are plain tokens named "[tN]". tokenizer.ggml.model is "gpt2"
    with one merge that can never apply, so llama.cpp tokenizes text byte by byte exactly like
    MoA's tokenizer and greedy outputs can be compared token for token.
"""

import argparse
import json
import math
import os
import struct
import sys
from pathlib import Path

import numpy as np

# ---------------------------------------------------------------------------------------------
# safetensors reading


_ST_DTYPES = {
    # safetensors dtype -> (numpy dtype used to hold the raw bytes, name of the GGML type)
    "F32": (np.float32, "F32"),
    "F16": (np.float16, "F16"),
    "BF16": (np.uint16, "BF16"),  # numpy has no bfloat16: keep the raw 16-bit patterns
}


class SafetensorsFile:
    """A memory-mapped .safetensors file: 8-byte little-endian header size, JSON header, data."""

    def __init__(self, path: Path):
        self.path = path
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100 * 1024 * 1024:
                raise ValueError(f"{path}: header of {n} bytes, not a safetensors file?")
            header = json.loads(f.read(n).decode("utf-8"))
        self.data_start = 8 + n
        header.pop("__metadata__", None)
        self.header = header
        size = os.path.getsize(path)
        self.mm = np.memmap(path, dtype=np.uint8, mode="r") if size > self.data_start else None
        for name, info in header.items():
            b, e = info["data_offsets"]
            if self.data_start + e > size or b > e:
                raise ValueError(f"{path}: tensor {name} data {b}..{e} past the end of the file")

    def names(self):
        return list(self.header.keys())

    def get(self, name: str):
        """(array of the raw element type, shape, GGML type name); the array is a view on the map."""
        info = self.header[name]
        dt = info["dtype"]
        if dt not in _ST_DTYPES:
            raise ValueError(f"{self.path}: tensor {name} has dtype {dt}; F32, F16, BF16 handled")
        np_dt, ggml = _ST_DTYPES[dt]
        b, e = info["data_offsets"]
        shape = tuple(int(x) for x in info["shape"])
        raw = self.mm[self.data_start + b: self.data_start + e]
        arr = raw.view(np_dt).reshape(shape)
        return arr, shape, ggml


class Checkpoint:
    def __init__(self, d: Path):
        idx = d / "model.safetensors.index.json"
        self.files = {}
        self.where = {}
        if idx.exists():
            wm = json.loads(idx.read_text())["weight_map"]
            for name, fn in wm.items():
                if fn not in self.files:
                    self.files[fn] = SafetensorsFile(d / fn)
                self.where[name] = self.files[fn]
        else:
            st = SafetensorsFile(d / "model.safetensors")
            self.files["model.safetensors"] = st
            for name in st.names():
                self.where[name] = st

    def has(self, name):
        return name in self.where

    def get(self, name):
        if name not in self.where:
            raise KeyError(f"checkpoint has no tensor {name}")
        return self.where[name].get(name)


# ---------------------------------------------------------------------------------------------
# layout helpers


def rotate_half_to_interleaved(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder the output rows of a q/k projection, head by head.

    Hugging Face Llama applies RoPE to the pairs (j, j + d/2) of each head (rotate_half); GGML's
    normal RoPE mode rotates the adjacent pairs (2j, 2j + 1). New row 2j of a head takes old row
    j and new row 2j + 1 takes old row j + d/2, so both compute the same attention scores.
    """
    rows = w.shape[0]
    if rows % n_heads != 0 or (rows // n_heads) % 2 != 0:
        raise ValueError(f"cannot split {rows} rows into {n_heads} heads of even size")
    d = rows // n_heads
    half = d // 2
    # rows of one head, viewed as [2 halves][half]: read as [half][2 halves] to interleave.
    order = np.arange(rows).reshape(n_heads, 2, half).transpose(0, 2, 1).reshape(rows)
    return np.ascontiguousarray(w[order])


def llama3_rope_factors(cfg: dict, rs: dict, head_dim: int) -> np.ndarray:
    """Per-frequency divisors for llama3 rope scaling (llama.cpp reads them from rope_freqs)."""
    theta = float(cfg.get("rope_theta", 10000.0))
    factor = float(rs.get("factor", 8.0))
    low = float(rs.get("low_freq_factor", 1.0))
    high = float(rs.get("high_freq_factor", 4.0))
    old_ctx = float(rs.get("original_max_position_embeddings", 8192))
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (theta ** (i / head_dim))
        wavelen = 2.0 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1.0 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def gpt2_byte_chars():
    """The GPT-2 byte-level alphabet: character standing for each byte value 0..255."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    chars = {}
    extra = 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path, help="checkpoint directory (config.json + safetensors)")
    ap.add_argument("output", type=Path, help="output .gguf file")
    ap.add_argument("--llama-cpp", type=Path, default=Path(os.environ.get("LLAMA_CPP_DIR", "/work/llamacpp")),
                    help="llama.cpp checkout whose gguf-py/ is used (default $LLAMA_CPP_DIR or /work/llamacpp)")
    ap.add_argument("--name", default=None, help="general.name (default: the directory name)")
    args = ap.parse_args()

    sys.path.insert(0, str(args.llama_cpp / "gguf-py"))
    try:
        import gguf  # noqa: E402
    except ImportError as e:
        sys.exit(f"hf_to_gguf: cannot import gguf from {args.llama_cpp / 'gguf-py'}: {e}")

    cfg = json.loads((args.input / "config.json").read_text())
    arch = (cfg.get("architectures") or ["LlamaForCausalLM"])[0]
    if arch != "LlamaForCausalLM" or cfg.get("model_type", "llama") != "llama":
        sys.exit(f"hf_to_gguf: {arch}/{cfg.get('model_type')}: only LlamaForCausalLM is handled")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        sys.exit("hf_to_gguf: attention_bias / mlp_bias checkpoints are not handled")
    if cfg.get("hidden_act", "silu") != "silu":
        sys.exit("hf_to_gguf: only hidden_act silu is handled")

    hidden = int(cfg["hidden_size"])
    n_layers = int(cfg["num_hidden_layers"])
    n_head = int(cfg["num_attention_heads"])
    n_kv = int(cfg.get("num_key_value_heads") or n_head)
    head_dim = int(cfg.get("head_dim") or hidden // n_head)
    vocab = int(cfg["vocab_size"])
    tied = bool(cfg.get("tie_word_embeddings", False))
    if vocab < 258:
        sys.exit(f"hf_to_gguf: vocab_size {vocab} < 258, the byte-level vocabulary needs 258 ids")

    ck = Checkpoint(args.input)

    # Decide the file type from the embedding dtype (moa init writes one dtype for all tensors).
    _, _, emb_type = ck.get("model.embed_tokens.weight")
    ftype = {"F32": gguf.LlamaFileType.ALL_F32, "F16": gguf.LlamaFileType.MOSTLY_F16,
             "BF16": gguf.LlamaFileType.MOSTLY_BF16}[emb_type]

    A = "llama"
    w = gguf.GGUFWriter(str(args.output), A)
    w.add_name(args.name or args.input.resolve().name)
    w.add_file_type(int(ftype))
    w.add_context_length(int(cfg.get("max_position_embeddings", 2048)))
    w.add_embedding_length(hidden)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(vocab)

    rs = cfg.get("rope_scaling")
    rope_freqs = None
    if rs:
        rtype = rs.get("rope_type", rs.get("type"))
        if rtype == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(float(rs["factor"]))
        elif rtype == "llama3":
            rope_freqs = llama3_rope_factors(cfg, rs, head_dim)
        elif rtype not in (None, "default"):
            sys.exit(f"hf_to_gguf: rope_scaling type {rtype} is not handled")

    # Vocabulary (see the module docstring).
    byte_chars = gpt2_byte_chars()
    tokens = byte_chars + ["<|bos|>", "<|eos|>"] + [f"[t{i}]" for i in range(258, vocab)]
    types = ([int(gguf.TokenType.NORMAL)] * 256 + [int(gguf.TokenType.CONTROL)] * 2
             + [int(gguf.TokenType.NORMAL)] * (vocab - 258))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    # llama.cpp wants a merges array and the writer refuses an empty one: "<|bos|>" is never a
    # symbol of a pre-tokenized word (no merge builds it), so this merge never fires.
    w.add_token_merges(["<|bos|> <|eos|>"])
    w.add_bos_token_id(256)
    w.add_eos_token_id(257)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)

    gtype = {"F32": None, "F16": None, "BF16": gguf.GGMLQuantizationType.BF16}
    n_written = 0

    def put(name, arr, ggml):
        nonlocal n_written
        if arr.ndim == 1 and ggml != "F32":
            arr = (arr.astype(np.uint32) << 16).view(np.float32) if ggml == "BF16" else arr.astype(np.float32)
            ggml = "F32"
        if ggml == "BF16":
            w.add_tensor(name, arr, raw_shape=arr.shape, raw_dtype=gtype["BF16"])
        else:
            w.add_tensor(name, arr)
        n_written += 1

    used = set()

    def take(hf_name):
        used.add(hf_name)
        a, shape, g = ck.get(hf_name)
        return a, g

    a, g = take("model.embed_tokens.weight")
    if a.shape != (vocab, hidden):
        sys.exit(f"hf_to_gguf: embed_tokens has shape {a.shape}, expected {(vocab, hidden)}")
    put("token_embd.weight", a, g)
    if rope_freqs is not None:
        put("rope_freqs.weight", rope_freqs, "F32")
    for i in range(n_layers):
        p = f"model.layers.{i}."
        b = f"blk.{i}."
        a, g = take(p + "input_layernorm.weight")
        put(b + "attn_norm.weight", a, g)
        a, g = take(p + "self_attn.q_proj.weight")
        put(b + "attn_q.weight", rotate_half_to_interleaved(a, n_head), g)
        a, g = take(p + "self_attn.k_proj.weight")
        put(b + "attn_k.weight", rotate_half_to_interleaved(a, n_kv), g)
        a, g = take(p + "self_attn.v_proj.weight")
        put(b + "attn_v.weight", a, g)
        a, g = take(p + "self_attn.o_proj.weight")
        put(b + "attn_output.weight", a, g)
        a, g = take(p + "post_attention_layernorm.weight")
        put(b + "ffn_norm.weight", a, g)
        a, g = take(p + "mlp.gate_proj.weight")
        put(b + "ffn_gate.weight", a, g)
        a, g = take(p + "mlp.up_proj.weight")
        put(b + "ffn_up.weight", a, g)
        a, g = take(p + "mlp.down_proj.weight")
        put(b + "ffn_down.weight", a, g)
    a, g = take("model.norm.weight")
    put("output_norm.weight", a, g)
    if ck.has("lm_head.weight"):
        a, g = take("lm_head.weight")
        put("output.weight", a, g)
    elif not tied:
        sys.exit("hf_to_gguf: no lm_head.weight and tie_word_embeddings is false")

    left = sorted(set(ck.where) - used)
    if left:
        sys.exit(f"hf_to_gguf: tensors not converted: {', '.join(left[:8])}{' ...' if len(left) > 8 else ''}")

    args.output.parent.mkdir(parents=True, exist_ok=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"hf_to_gguf: wrote {args.output} ({n_written} tensors, {ftype.name}, "
          f"{os.path.getsize(args.output) / 2**20:.1f} MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
