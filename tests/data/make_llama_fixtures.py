#!/usr/bin/python3
"""Golden fixtures for the Llama-family forward pass (independent float64 reference).

How to run (Debian's python3-torch + python3-numpy; no transformers / safetensors needed):

    /usr/bin/python3 tests/data/make_llama_fixtures.py            # (re)writes tests/data/fixtures/
    /usr/bin/python3 tests/data/make_llama_fixtures.py --check    # also runs the slow self-checks

Everything is seeded and single-threaded: re-running rewrites byte-identical files.
The script always runs the fast self-checks (safetensors read-back, RoPE / attention cross-checks);
it aborts without writing anything if one fails.

What it writes, one directory per variant under tests/data/fixtures/<variant>/:

    config.json                       Hugging Face config (architectures, model_type, sizes, rope...)
    model.safetensors                 all weights (unsharded variants)
    model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json   (sharded variant)
    expected.json                     dense causal forward pass
    expected_masked.json              MoA-masked forward pass (llama_gqa_bf16 only)

Variants (all 2 layers, 24 token ids, hidden_act silu, no attention/mlp bias unless stated):

    name                  arch                 dtype  vocab hid heads kv head_dim inter  rope                      tied
    llama_gqa_bf16        LlamaForCausalLM     BF16   128   32  4     2  8 (impl.) 48     theta 1e4                 no
    llama_mqa_llama3rope  LlamaForCausalLM     F32    96    32  4     1  16 (config) 48   theta 5e5, llama3 x8,     yes
                                                                                         orig_max 64 (sharded)
    qwen2_bias_f16        Qwen2ForCausalLM     F16    128   32  4     2  8 (impl.) 48     theta 1e6, eps 1e-6,      no
                                                                                         q/k/v biases
    mistral_f32           MistralForCausalLM   F32    96    32  4     2  8 (impl.) 48     theta 1e6, sliding null   no
    llama_linear_rope     LlamaForCausalLM     F32    96    32  4     4  8 (impl.) 48     theta 1e4, linear x2      no
                                                                                         ("type" key, old style)

Tensor names (exactly Hugging Face), every tensor stored in the variant's dtype (biases too),
shapes are [out_features, in_features] for projections:

    model.embed_tokens.weight                        [vocab, hidden]
    model.layers.{i}.input_layernorm.weight          [hidden]
    model.layers.{i}.self_attn.q_proj.weight         [heads*head_dim, hidden]
    model.layers.{i}.self_attn.k_proj.weight         [kv_heads*head_dim, hidden]
    model.layers.{i}.self_attn.v_proj.weight         [kv_heads*head_dim, hidden]
    model.layers.{i}.self_attn.o_proj.weight         [hidden, heads*head_dim]
    model.layers.{i}.self_attn.{q,k,v}_proj.bias     [..]            (qwen2_bias_f16 only)
    model.layers.{i}.post_attention_layernorm.weight [hidden]
    model.layers.{i}.mlp.gate_proj.weight            [inter, hidden]
    model.layers.{i}.mlp.up_proj.weight              [inter, hidden]
    model.layers.{i}.mlp.down_proj.weight            [hidden, inter]
    model.norm.weight                                [hidden]
    lm_head.weight                                   [vocab, hidden]  (absent when tie_word_embeddings)

safetensors layout written here: u64 little-endian header length N, then N bytes of JSON
({"__metadata__": {"format": "pt"}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
tensors sorted by name, space-padded so that 8 + N is a multiple of 8), then the raw little-endian
tensor data, contiguous, offsets relative to the start of the data section.

expected.json layout:

    {
      "variant": str,
      "ids": [int] * T,                         # T = 24 token ids (position p = index p, no BOS added)
      "logits": [[float] * vocab] * T,          # logits[p] = next-token logits after ids[0..p]
                                                #   (float64 reference, rounded to 9 significant digits)
      "argmax": [int] * T,                      # argmax of logits[p]
      "nll_per_token": [float] * (T-1),         # nll_per_token[k] = -log softmax(logits[k])[ids[k+1]],
                                                #   i.e. NLL of token k+1 given tokens 0..k
      "nll": float                              # mean of nll_per_token
    }

expected_masked.json: same keys plus

      "sink": int,                              # sink = 2
      "cache_sizes": [[int] * heads] * layers,  # cache_h per (layer, query head)
      "mask_rule": str                          # human-readable rule below

  MoA mask: in layer l, query head h, query position i sees key position j iff
      j <= i and (j < S or i - j < cache_h - S),   cache_h = cache_sizes[l][h], S = min(cache_h, sink)
  i.e. the S first (sink) tokens plus the most recent cache_h - S tokens.  Masks are per QUERY head
  (two query heads sharing a KV head may have different caches).

Reference semantics (Hugging Face modeling_llama / modeling_qwen2 / modeling_mistral), in float64,
from the stored (bf16/f16-rounded) weights:
  RMSNorm  y = x * rsqrt(mean(x^2) + eps) * w
  RoPE     rotate-half (NeoX) layout: pairs (d, d + head_dim/2), inv_freq[k] = 1/theta^(2k/head_dim),
           angle = pos * inv_freq (llama3: inv_freq rescaled as HF _compute_llama3_parameters;
           linear: pos / factor).  HF computes inv_freq/cos/sin in float32; here float64.
  attention softmax(q k^T / sqrt(head_dim) + causal) v, KV head of query head h = h // (heads/kv_heads)
  MLP      down(silu(gate(x)) * up(x)); residual adds around both blocks; final norm; lm_head
           (or embed_tokens when tied).
"""

import json
import math
import os
import shutil
import struct
import sys
from collections import deque

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "fixtures")
SEQ_LEN = 24

torch.set_num_threads(1)

DTYPES = {  # safetensors dtype name -> (torch dtype, bytes, config torch_dtype)
    "BF16": (torch.bfloat16, 2, "bfloat16"),
    "F16": (torch.float16, 2, "float16"),
    "F32": (torch.float32, 4, "float32"),
}
INT_VIEW = {torch.bfloat16: torch.int16, torch.float16: torch.int16, torch.float32: torch.int32}


# --------------------------------------------------------------------------------------------
# safetensors writer / reader (self-written)
# --------------------------------------------------------------------------------------------

def tensor_bytes(t):
    """Raw little-endian bytes of a contiguous tensor (bf16 has no numpy dtype: view as int16)."""
    t = t.contiguous()
    raw = t.view(INT_VIEW[t.dtype]).numpy()
    return raw.astype(raw.dtype.newbyteorder("<"), copy=False).tobytes()


def write_safetensors(path, tensors):
    """tensors: dict name -> torch tensor (already in the storage dtype)."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        st_dtype = {v[0]: k for k, v in DTYPES.items()}[t.dtype]
        b = tensor_bytes(t)
        header[name] = {"dtype": st_dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (8 - (8 + len(hjson)) % 8) % 8
    hjson += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    return offset


def read_safetensors(path):
    """Tiny independent reader: returns (metadata, {name: float64 tensor}) parsing raw bytes."""
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0, "data section not 8-byte aligned"
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    body = data[8 + n:]
    out = {}
    end_max = 0
    spans = []
    for name, info in header.items():
        b, e = info["data_offsets"]
        shape = info["shape"]
        count = 1
        for s in shape:
            count *= s
        if info["dtype"] == "F32":
            arr = np.frombuffer(body[b:e], dtype="<f4").astype(np.float64)
            width = 4
        elif info["dtype"] == "F16":
            arr = np.frombuffer(body[b:e], dtype="<f2").astype(np.float64)
            width = 2
        elif info["dtype"] == "BF16":
            u16 = np.frombuffer(body[b:e], dtype="<u2").astype(np.uint32)
            arr = (u16 << 16).view(np.float32).astype(np.float64)
            width = 2
        else:
            raise ValueError(info["dtype"])
        assert e - b == count * width, name
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
        spans.append((b, e))
        end_max = max(end_max, e)
    spans.sort()
    pos = 0
    for b, e in spans:  # contiguous, non-overlapping, covering the whole data section
        assert b == pos, path
        pos = e
    assert pos == len(body) == end_max, path
    return meta, out


# --------------------------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------------------------

VARIANTS = [
    dict(name="llama_gqa_bf16", arch="LlamaForCausalLM", model_type="llama", dtype="BF16",
         vocab=128, hidden=32, heads=4, kv_heads=2, head_dim=None, inter=48, layers=2,
         theta=10000.0, eps=1e-5, rope_scaling=None, tied=False, qkv_bias=False, seed=1001,
         shards=1, masked=dict(sink=2, cache_sizes=[[3, 24, 8, 5], [12, 4, 24, 16]])),
    dict(name="llama_mqa_llama3rope", arch="LlamaForCausalLM", model_type="llama", dtype="F32",
         vocab=96, hidden=32, heads=4, kv_heads=1, head_dim=16, inter=48, layers=2,
         theta=500000.0, eps=1e-5,
         rope_scaling={"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                       "original_max_position_embeddings": 64, "rope_type": "llama3"},
         tied=True, qkv_bias=False, seed=1002, shards=2),
    dict(name="qwen2_bias_f16", arch="Qwen2ForCausalLM", model_type="qwen2", dtype="F16",
         vocab=128, hidden=32, heads=4, kv_heads=2, head_dim=None, inter=48, layers=2,
         theta=1000000.0, eps=1e-6, rope_scaling=None, tied=False, qkv_bias=True, seed=1003,
         shards=1),
    dict(name="mistral_f32", arch="MistralForCausalLM", model_type="mistral", dtype="F32",
         vocab=96, hidden=32, heads=4, kv_heads=2, head_dim=None, inter=48, layers=2,
         theta=1000000.0, eps=1e-5, rope_scaling=None, tied=False, qkv_bias=False, seed=1004,
         shards=1),
    dict(name="llama_linear_rope", arch="LlamaForCausalLM", model_type="llama", dtype="F32",
         vocab=96, hidden=32, heads=4, kv_heads=4, head_dim=None, inter=48, layers=2,
         theta=10000.0, eps=1e-5, rope_scaling={"type": "linear", "factor": 2.0},
         tied=False, qkv_bias=False, seed=1005, shards=1),
]


def head_dim_of(v):
    return v["head_dim"] if v["head_dim"] is not None else v["hidden"] // v["heads"]


def make_config(v):
    c = {
        "architectures": [v["arch"]],
        "model_type": v["model_type"],
        "vocab_size": v["vocab"],
        "hidden_size": v["hidden"],
        "intermediate_size": v["inter"],
        "num_hidden_layers": v["layers"],
        "num_attention_heads": v["heads"],
        "num_key_value_heads": v["kv_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": 512,
        "initializer_range": 0.02,
        "rms_norm_eps": v["eps"],
        "rope_theta": v["theta"],
        "rope_scaling": v["rope_scaling"],
        "tie_word_embeddings": v["tied"],
        "torch_dtype": DTYPES[v["dtype"]][2],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "use_cache": True,
        "attention_dropout": 0.0,
        "transformers_version": "4.44.2",
    }
    if v["head_dim"] is not None:
        c["head_dim"] = v["head_dim"]
    if v["model_type"] == "llama":
        c.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    elif v["model_type"] == "qwen2":
        c.update({"use_sliding_window": False, "sliding_window": 32768, "max_window_layers": 2})
    elif v["model_type"] == "mistral":
        c.update({"sliding_window": None})
    return dict(sorted(c.items()))


def make_weights(v):
    """Random weights in float64, then rounded to the storage dtype.  Returns the stored tensors."""
    g = torch.Generator().manual_seed(v["seed"])

    def randn(*shape, std=0.2, mean=0.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean

    H, I, V = v["hidden"], v["inter"], v["vocab"]
    hd = head_dim_of(v)
    qd, kd = v["heads"] * hd, v["kv_heads"] * hd
    w = {"model.embed_tokens.weight": randn(V, H, std=0.5)}
    for i in range(v["layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = randn(H, std=0.1, mean=1.0)
        w[p + "self_attn.q_proj.weight"] = randn(qd, H)
        w[p + "self_attn.k_proj.weight"] = randn(kd, H)
        w[p + "self_attn.v_proj.weight"] = randn(kd, H)
        w[p + "self_attn.o_proj.weight"] = randn(H, qd)
        if v["qkv_bias"]:
            w[p + "self_attn.q_proj.bias"] = randn(qd, std=0.3)
            w[p + "self_attn.k_proj.bias"] = randn(kd, std=0.3)
            w[p + "self_attn.v_proj.bias"] = randn(kd, std=0.3)
        w[p + "post_attention_layernorm.weight"] = randn(H, std=0.1, mean=1.0)
        w[p + "mlp.gate_proj.weight"] = randn(I, H)
        w[p + "mlp.up_proj.weight"] = randn(I, H)
        w[p + "mlp.down_proj.weight"] = randn(H, I)
    w["model.norm.weight"] = randn(H, std=0.1, mean=1.0)
    if not v["tied"]:
        w["lm_head.weight"] = randn(V, H)
    ids = torch.randint(0, V, (SEQ_LEN,), generator=g).tolist()
    tdt = DTYPES[v["dtype"]][0]
    stored = {k: t.to(tdt) for k, t in w.items()}
    return stored, ids


# --------------------------------------------------------------------------------------------
# float64 reference forward pass (HF semantics)
# --------------------------------------------------------------------------------------------

def rope_inv_freq(v):
    """inv_freq per HF rope init functions, plus the position divisor (linear scaling)."""
    hd = head_dim_of(v)
    inv_freq = 1.0 / (v["theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).to(torch.float64) / hd))
    pos_div = 1.0
    rs = v["rope_scaling"]
    if rs is not None:
        rtype = rs.get("rope_type", rs.get("type"))
        if rtype == "linear":
            pos_div = rs["factor"]
        elif rtype == "llama3":
            factor = rs["factor"]
            low_freq_factor = rs["low_freq_factor"]
            high_freq_factor = rs["high_freq_factor"]
            old_context_len = rs["original_max_position_embeddings"]
            low_freq_wavelen = old_context_len / low_freq_factor
            high_freq_wavelen = old_context_len / high_freq_factor
            wavelen = 2 * math.pi / inv_freq
            inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
            smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
            is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
            inv_freq = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
        else:
            raise ValueError(rtype)
    return inv_freq, pos_div


def rope_cos_sin(v, T):
    inv_freq, pos_div = rope_inv_freq(v)
    pos = torch.arange(T, dtype=torch.float64) / pos_div
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat([-x2, x1], dim=-1)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def moa_mask(T, cache, sink):
    """bool [T, T]: True where query i may attend key j."""
    S = min(cache, sink)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return (j <= i) & ((j < S) | (i - j < cache - S))


def attention_dense(q, k, v, mask):
    """q [nh, T, d], k/v [nh, T, d] (already repeated), mask bool [nh, T, T] -> [nh, T, d]."""
    d = q.shape[-1]
    scores = q @ k.transpose(-1, -2) * (d ** -0.5)
    scores = scores.masked_fill(~mask, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    return p @ v


def forward(v, W, ids, masks=None, attn_fn=attention_dense, keep=None):
    """W: name -> float64 tensor.  masks: None (causal) or [layer] -> bool [nh, T, T].
    Returns logits [T, vocab] float64."""
    T = len(ids)
    nh, nkv = v["heads"], v["kv_heads"]
    hd = head_dim_of(v)
    eps = v["eps"]
    cos, sin = rope_cos_sin(v, T)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(v["layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = h @ W[p + "self_attn.q_proj.weight"].T
        k = h @ W[p + "self_attn.k_proj.weight"].T
        val = h @ W[p + "self_attn.v_proj.weight"].T
        if v["qkv_bias"]:
            q = q + W[p + "self_attn.q_proj.bias"]
            k = k + W[p + "self_attn.k_proj.bias"]
            val = val + W[p + "self_attn.v_proj.bias"]
        q = q.view(T, nh, hd).transpose(0, 1)
        k = k.view(T, nkv, hd).transpose(0, 1)
        val = val.view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if keep is not None:
            keep.append((l, q.clone(), k.clone(), val.clone()))
        rep = nh // nkv
        k = k.repeat_interleave(rep, dim=0)  # == HF repeat_kv: query head h uses kv head h // rep
        val = val.repeat_interleave(rep, dim=0)
        mask = causal.expand(nh, T, T) if masks is None else masks[l]
        o = attn_fn(q, k, val, mask)
        o = o.transpose(0, 1).reshape(T, nh * hd)
        x = x + o @ W[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate = h @ W[p + "mlp.gate_proj.weight"].T
        up = h @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    lm = W["model.embed_tokens.weight"] if v["tied"] else W["lm_head.weight"]
    return x @ lm.T


def nll_of(logits, ids):
    lp = torch.log_softmax(logits, dim=-1)
    return [-lp[t - 1, ids[t]].item() for t in range(1, len(ids))]


# --------------------------------------------------------------------------------------------
# self-checks (independent formulations)
# --------------------------------------------------------------------------------------------

def check_llama3_freqs(v):
    """Meta's original scalar apply_scaling loop vs the vectorised HF formula."""
    rs = v["rope_scaling"]
    hd = head_dim_of(v)
    base = [1.0 / (v["theta"] ** (2 * k / hd)) for k in range(hd // 2)]
    lo_w = rs["original_max_position_embeddings"] / rs["low_freq_factor"]
    hi_w = rs["original_max_position_embeddings"] / rs["high_freq_factor"]
    ref, kinds = [], set()
    for f in base:
        wl = 2 * math.pi / f
        if wl < hi_w:
            ref.append(f)
            kinds.add("high")
        elif wl > lo_w:
            ref.append(f / rs["factor"])
            kinds.add("low")
        else:
            s = (rs["original_max_position_embeddings"] / wl - rs["low_freq_factor"]) / (
                rs["high_freq_factor"] - rs["low_freq_factor"])
            ref.append((1 - s) * f / rs["factor"] + s * f)
            kinds.add("medium")
    got, _ = rope_inv_freq(v)
    assert torch.allclose(got, torch.tensor(ref, dtype=torch.float64), rtol=1e-14, atol=0), (got, ref)
    assert kinds == {"high", "medium", "low"}, f"llama3 scaling does not exercise all regimes: {kinds}"


def check_rope_complex(v):
    """rotate-half RoPE == complex multiplication on pairs (d, d + hd/2)."""
    T, hd = SEQ_LEN, head_dim_of(v)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, T, hd, generator=g, dtype=torch.float64)
    cos, sin = rope_cos_sin(v, T)
    a = x * cos + rotate_half(x) * sin
    inv_freq, pos_div = rope_inv_freq(v)
    ang = torch.outer(torch.arange(T, dtype=torch.float64) / pos_div, inv_freq)
    z = torch.complex(x[..., : hd // 2], x[..., hd // 2:]) * torch.polar(torch.ones_like(ang), ang)
    b = torch.cat([z.real, z.imag], dim=-1)
    assert torch.allclose(a, b, rtol=0, atol=1e-12)


def attention_torch_builtin(q, k, v, mask):
    """torch's own fused attention (torch 1.13: private F._scaled_dot_product_attention)."""
    F = torch.nn.functional
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    # 1.13 private API: (q, k, v, attn_mask, dropout_p, need_attn_weights, is_causal)
    o, _ = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)
    return o


def attention_loop_cache(cache_sizes_l, sink):
    """Per-(head, query) loop over an explicitly simulated sink + ring KV cache (incremental decode)."""

    def fn(q, k, v, mask):
        nh, T, d = q.shape
        out = torch.zeros_like(q)
        for h in range(nh):
            cache = cache_sizes_l[h] if cache_sizes_l is not None else 10 ** 9
            S = min(cache, sink)
            sinks, recent = [], deque(maxlen=max(cache - S, 0) or None)
            for i in range(T):
                # token i's K/V enters the cache, then query i attends to whatever is resident
                if len(sinks) < S:
                    sinks.append(i)
                elif cache - S > 0:
                    recent.append(i)
                resident = sinks + list(recent)
                sc = [float(q[h, i] @ k[h, j]) / math.sqrt(d) for j in resident]
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                acc = torch.zeros(d, dtype=torch.float64)
                for w, j in zip(e, resident):
                    acc += (w / z) * v[h, j]
                out[h, i] = acc
        return out

    return fn


def forward_with_loop_attention(v, W, ids, cache_sizes=None, sink=0):
    layer = [0]

    def fn(q, k, val, mask):
        cs = cache_sizes[layer[0]] if cache_sizes is not None else None
        layer[0] += 1
        return attention_loop_cache(cs, sink)(q, k, val, mask)

    return forward(v, W, ids, attn_fn=fn)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def r9(x):
    return float(f"{x:.9g}")


def dump_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def main():
    slow = "--check" in sys.argv
    tmp = OUT_DIR + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for v in VARIANTS:
        vd = os.path.join(tmp, v["name"])
        os.makedirs(vd)
        stored, ids = make_weights(v)
        dump_json_pretty = json.dumps(make_config(v), indent=2) + "\n"
        with open(os.path.join(vd, "config.json"), "w") as f:
            f.write(dump_json_pretty)

        # ---- write safetensors (sharded or not) and read them back with the tiny reader
        names = sorted(stored)
        if v["shards"] == 1:
            files = {"model.safetensors": names}
        else:
            # split inside layer 1 (attention in shard 1, MLP + norms in shard 2), like HF's
            # size-based sharding does.
            first = [n for n in names if n.startswith("model.embed_tokens") or n.startswith("model.layers.0.")
                     or (n.startswith("model.layers.1.self_attn."))]
            second = [n for n in names if n not in first]
            files = {"model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": second}
        total = 0
        for fname, ns in files.items():
            total += write_safetensors(os.path.join(vd, fname), {n: stored[n] for n in ns})
        if v["shards"] > 1:
            index = {"metadata": {"total_size": total},
                     "weight_map": {n: f for f, ns in files.items() for n in ns}}
            index["weight_map"] = dict(sorted(index["weight_map"].items()))
            with open(os.path.join(vd, "model.safetensors.index.json"), "w") as f:
                f.write(json.dumps(index, indent=2) + "\n")
        W = {}
        for fname in files:
            meta, t = read_safetensors(os.path.join(vd, fname))
            assert meta == {"format": "pt"}
            assert not (set(W) & set(t))
            W.update(t)
        assert set(W) == set(stored), v["name"]
        for n in stored:
            assert torch.equal(W[n], stored[n].to(torch.float64)), n
            assert list(W[n].shape) == list(stored[n].shape)
        if v["shards"] > 1:
            with open(os.path.join(vd, "model.safetensors.index.json")) as f:
                idx = json.load(f)
            assert set(idx["weight_map"]) == set(stored)
        assert ("lm_head.weight" in W) == (not v["tied"])

        # ---- rope self-checks
        check_rope_complex(v)
        rtype = (v["rope_scaling"] or {}).get("rope_type", (v["rope_scaling"] or {}).get("type"))
        if rtype == "llama3":
            check_llama3_freqs(v)
            base = 1.0 / (v["theta"] ** (torch.arange(0, head_dim_of(v), 2, dtype=torch.float64) / head_dim_of(v)))
            assert not torch.allclose(rope_inv_freq(v)[0], base)

        # ---- dense forward + cross-checks
        logits = forward(v, W, ids)
        logits_b = forward(v, W, ids, attn_fn=attention_torch_builtin)
        err = (logits - logits_b).abs().max().item()
        assert err < 1e-10, f"{v['name']}: builtin attention mismatch {err}"
        if slow:
            logits_c = forward_with_loop_attention(v, W, ids)
            err = (logits - logits_c).abs().max().item()
            assert err < 1e-10, f"{v['name']}: loop attention mismatch {err}"
        assert logits.std().item() > 0.5, "logits too flat"
        nll = nll_of(logits, ids)
        exp = {"variant": v["name"], "ids": ids,
               "logits": [[r9(x) for x in row] for row in logits.tolist()],
               "argmax": logits.argmax(-1).tolist(),
               "nll_per_token": nll, "nll": sum(nll) / len(nll)}
        dump_json(os.path.join(vd, "expected.json"), exp)
        print(f"{v['name']}: nll {exp['nll']:.6f}  logits std {logits.std().item():.3f}")

        # ---- MoA masked forward
        if "masked" in v:
            sink = v["masked"]["sink"]
            cs = v["masked"]["cache_sizes"]
            assert len(cs) == v["layers"] and all(len(r) == v["heads"] for r in cs)
            masks = [torch.stack([moa_mask(SEQ_LEN, c, sink) for c in row]) for row in cs]
            # the full-cache head must equal the causal mask, every other one must differ from it
            causal = torch.ones(SEQ_LEN, SEQ_LEN, dtype=torch.bool).tril()
            assert any(torch.equal(m, causal) for lm in masks for m in lm)
            assert any(not torch.equal(m, causal) for lm in masks for m in lm)
            # each row sees exactly min(i + 1, cache) keys
            for row, lm in zip(cs, masks):
                for c, m in zip(row, lm):
                    assert m.sum(-1).tolist() == [min(i + 1, c) for i in range(SEQ_LEN)]
            mlogits = forward(v, W, ids, masks=masks)
            lc = forward_with_loop_attention(v, W, ids, cache_sizes=cs, sink=sink)
            err = (mlogits - lc).abs().max().item()
            assert err < 1e-10, f"{v['name']}: masked loop attention mismatch {err}"
            mnll = nll_of(mlogits, ids)
            assert max(abs(a - b) for a, b in zip(mnll, nll)) > 1e-3, "mask has no effect"
            mexp = {"variant": v["name"], "sink": sink, "cache_sizes": cs,
                    "mask_rule": "layer l, query head h, query i sees key j iff j <= i and "
                                 "(j < S or i - j < cache_h - S), cache_h = cache_sizes[l][h], "
                                 "S = min(cache_h, sink)",
                    "ids": ids,
                    "logits": [[r9(x) for x in row] for row in mlogits.tolist()],
                    "argmax": mlogits.argmax(-1).tolist(),
                    "nll_per_token": mnll, "nll": sum(mnll) / len(mnll)}
            dump_json(os.path.join(vd, "expected_masked.json"), mexp)
            print(f"{v['name']}: masked nll {mexp['nll']:.6f}")

    shutil.rmtree(OUT_DIR, ignore_errors=True)
    os.rename(tmp, OUT_DIR)
    print("wrote", OUT_DIR)


if __name__ == "__main__":
    main()
