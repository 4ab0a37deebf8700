#!/usr/bin/python3
"""Golden fixtures for the hand-written backward pass (float64 PyTorch autograd reference).

How to run (Debian's python3-torch + python3-numpy; no transformers / safetensors needed):

    /usr/bin/python3 tests/data/make_grad_fixture.py       # (re)writes tests/data/fixtures/grad_*

Seeded and single-threaded: re-running rewrites byte-identical files. The script self-checks
(safetensors read-back, a finite-difference directional derivative of the loss, the mask) and
writes nothing if a check fails.

Variants (2 layers, vocab 64, hidden 32, 4 query heads, 2 KV heads, head_dim 8, intermediate 48,
T = 16 tokens, weights stored as F32):

    name         rope                      tied  biases                 attention
    grad_dense   theta 1e4, linear x2      no    none                   dense causal
    grad_masked  theta 5e5, llama3 x8,     yes   attention_bias (q,k,   sink + window per
                 orig_max 16                     v,o) and mlp_bias      (layer, query head)

Files per variant (tests/data/fixtures/<name>/):

    config.json          Hugging Face config
    model.safetensors    F32 weights, HF tensor names (model.embed_tokens.weight,
                         model.layers.{i}.self_attn.{q,k,v,o}_proj.{weight,bias},
                         model.layers.{i}.{input_layernorm,post_attention_layernorm}.weight,
                         model.layers.{i}.mlp.{gate,up,down}_proj.{weight,bias}, model.norm.weight,
                         lm_head.weight (absent when tied))
    grad_expected.json   {"ids": [T], "loss_mask": [T], "spans": [[[sink, window]] * heads] * layers
                          or null (dense), "loss": float}
    grads.safetensors    F64 tensors:
                           <param name>              d loss / d param, same name and shape as the
                                                     weight (tied: embed_tokens holds both uses)
                           hook.{l}.q  [T, H, D]     post-RoPE queries of layer l
                           hook.{l}.k  [T, G, D]     post-RoPE keys
                           hook.{l}.v  [T, G, D]     values
                           hook.{l}.d_out [T, H, D]  d loss / d attention output (o_proj input)
                           logits [T, V]

    adamw.safetensors    (grad_dense only) F64: torch.optim.AdamW run for ADAMW_STEPS steps on the
                         same ids and loss (float64 params, no grad clipping):
                           <param name>              the parameter after the last step
                           losses [ADAMW_STEPS]      the loss before each step
                         hyper-parameters in grad_expected.json "adamw": lr, betas, eps,
                         weight_decay (on 2-D tensors only; norms and biases are not decayed)

Loss: loss_mask[t] = weight of predicting ids[t+1] from position t (last entry ignored); here 1
for the positions whose target is in the last half of the tokens (t in [T/2 - 1, T - 1)), else 0;
loss = sum_t mask[t] * nll_t / sum_t mask[t].

Mask (DESIGN.md): in layer l, query head h, query i sees key j iff
    j <= i and (j < sink[l][h] or i - j < window[l][h]);  dense: every j <= i.
Model semantics as in make_llama_fixtures.py (HF modeling_llama, float64): RMSNorm
x * rsqrt(mean(x^2) + eps) * w; rotate-half RoPE with HF's inv_freq (linear: positions / factor,
llama3: rescaled inv_freq); GQA query head h reads KV head h // (H / G); MLP
down(silu(gate(x)) * up(x)); residual adds; final norm; lm_head or tied embed_tokens.
"""

import json
import math
import os
import shutil
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "fixtures")
T = 16
ADAMW_STEPS = 10
ADAMW = {"lr": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}

torch.set_num_threads(1)

ST_DTYPE = {torch.float32: ("F32", torch.int32), torch.float64: ("F64", torch.int64)}


# --------------------------------------------------------------------------------------------
# safetensors writer / reader (self-written)
# --------------------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """u64 LE header length, JSON header (sorted names, dtype/shape/data_offsets), raw LE data."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        st, iv = ST_DTYPE[t.dtype]
        raw = t.view(iv).numpy()
        b = raw.astype(raw.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": st, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - (8 + len(hjson)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        np_dt = {"F32": "<f4", "F64": "<f8"}[info["dtype"]]
        out[name] = torch.from_numpy(np.frombuffer(body[b:e], dtype=np_dt).astype(np.float64)
                                     .reshape(info["shape"]).copy())
    return out


# --------------------------------------------------------------------------------------------
# variants
# --------------------------------------------------------------------------------------------

VARIANTS = [
    dict(name="grad_dense", vocab=64, hidden=32, heads=4, kv_heads=2, inter=48, layers=2,
         theta=10000.0, eps=1e-5, rope_scaling={"type": "linear", "factor": 2.0}, tied=False,
         bias=False, spans=None, seed=2001, adamw=True),
    dict(name="grad_masked", vocab=64, hidden=32, heads=4, kv_heads=2, inter=48, layers=2,
         theta=500000.0, eps=1e-6,
         rope_scaling={"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                       "original_max_position_embeddings": 16, "rope_type": "llama3"},
         tied=True, bias=True,
         # [sink, window] per (layer, query head); heads 0,1 share KV head 0, heads 2,3 KV head 1.
         # Edges: window 1 without sink (sees only itself), window T-1, sink > T, window 1 + sink.
         spans=[[[0, 1], [2, 3], [20, 2], [0, T - 1]],
                [[1, T], [3, 5], [0, 4], [4, 1]]],
         seed=2002),
]


def head_dim(v):
    return v["hidden"] // v["heads"]


def make_config(v):
    c = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": v["vocab"],
        "hidden_size": v["hidden"],
        "intermediate_size": v["inter"],
        "num_hidden_layers": v["layers"],
        "num_attention_heads": v["heads"],
        "num_key_value_heads": v["kv_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": 256,
        "initializer_range": 0.02,
        "rms_norm_eps": v["eps"],
        "rope_theta": v["theta"],
        "rope_scaling": v["rope_scaling"],
        "tie_word_embeddings": v["tied"],
        "torch_dtype": "float32",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "use_cache": True,
        "attention_dropout": 0.0,
        "attention_bias": v["bias"],
        "mlp_bias": v["bias"],
        "pretraining_tp": 1,
        "transformers_version": "4.44.2",
    }
    return dict(sorted(c.items()))


def make_weights(v):
    g = torch.Generator().manual_seed(v["seed"])

    def randn(*shape, std=0.2, mean=0.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std + mean

    C, F, V = v["hidden"], v["inter"], v["vocab"]
    qd, kd = v["heads"] * head_dim(v), v["kv_heads"] * head_dim(v)
    w = {"model.embed_tokens.weight": randn(V, C, std=0.5)}
    for i in range(v["layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = randn(C, std=0.1, mean=1.0)
        w[p + "self_attn.q_proj.weight"] = randn(qd, C, std=0.3)
        w[p + "self_attn.k_proj.weight"] = randn(kd, C, std=0.3)
        w[p + "self_attn.v_proj.weight"] = randn(kd, C)
        w[p + "self_attn.o_proj.weight"] = randn(C, qd)
        w[p + "post_attention_layernorm.weight"] = randn(C, std=0.1, mean=1.0)
        w[p + "mlp.gate_proj.weight"] = randn(F, C)
        w[p + "mlp.up_proj.weight"] = randn(F, C)
        w[p + "mlp.down_proj.weight"] = randn(C, F)
        if v["bias"]:
            for n, size in (("self_attn.q_proj", qd), ("self_attn.k_proj", kd),
                            ("self_attn.v_proj", kd), ("self_attn.o_proj", C),
                            ("mlp.gate_proj", F), ("mlp.up_proj", F), ("mlp.down_proj", C)):
                w[p + n + ".bias"] = randn(size, std=0.1)
    w["model.norm.weight"] = randn(C, std=0.1, mean=1.0)
    if not v["tied"]:
        w["lm_head.weight"] = randn(V, C)
    ids = torch.randint(0, V, (T,), generator=g).tolist()
    # the stored weights are F32: the reference uses exactly those values
    return {k: t.to(torch.float32) for k, t in w.items()}, ids


# --------------------------------------------------------------------------------------------
# float64 reference (HF semantics), differentiated by autograd
# --------------------------------------------------------------------------------------------

def rope_cos_sin(v):
    hd = head_dim(v)
    inv = 1.0 / (v["theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).to(torch.float64) / hd))
    pos = torch.arange(T, dtype=torch.float64)
    rs = v["rope_scaling"]
    rtype = rs.get("rope_type", rs.get("type")) if rs else None
    if rtype == "linear":
        pos = pos / rs["factor"]
    elif rtype == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        inv_l = torch.where(wl > old / lo, inv / factor, inv)
        s = (old / wl - lo) / (hi - lo)
        smooth = (1 - s) * inv_l / factor + s * inv_l
        medium = ~(wl < old / hi) * ~(wl > old / lo)
        inv = torch.where(medium, smooth, inv_l)
    freqs = pos[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def span_mask(sink, window):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return (j <= i) & ((j < sink) | (i - j < window))


def masks_of(v):
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    if v["spans"] is None:
        return [causal.expand(v["heads"], T, T) for _ in range(v["layers"])]
    return [torch.stack([span_mask(s, w) for s, w in row]) for row in v["spans"]]


def forward(v, W, ids, mask_w, keep=None):
    """W: name -> float64 leaf tensors. Returns (loss, logits). keep: list to receive per-layer
    (q, k, v, o) with o.retain_grad()."""
    nh, nkv, hd, eps = v["heads"], v["kv_heads"], head_dim(v), v["eps"]
    cos, sin = rope_cos_sin(v)
    masks = masks_of(v)
    b = (lambda n: W[n]) if v["bias"] else (lambda n: 0.0)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for l in range(v["layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = h @ W[p + "self_attn.q_proj.weight"].T + b(p + "self_attn.q_proj.bias")
        k = h @ W[p + "self_attn.k_proj.weight"].T + b(p + "self_attn.k_proj.bias")
        val = h @ W[p + "self_attn.v_proj.weight"].T + b(p + "self_attn.v_proj.bias")
        q = q.view(T, nh, hd).transpose(0, 1)
        k = k.view(T, nkv, hd).transpose(0, 1)
        val = val.view(T, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = nh // nkv
        kr = k.repeat_interleave(rep, dim=0)
        vr = val.repeat_interleave(rep, dim=0)
        scores = (q @ kr.transpose(-1, -2)) * (hd ** -0.5)
        scores = scores.masked_fill(~masks[l], float("-inf"))
        o = (torch.softmax(scores, dim=-1) @ vr).transpose(0, 1).reshape(T, nh * hd)
        if keep is not None:
            o.retain_grad()
            keep.append((q.transpose(0, 1).detach(), k.transpose(0, 1).detach(),
                         val.transpose(0, 1).detach(), o))
        x = x + o @ W[p + "self_attn.o_proj.weight"].T + b(p + "self_attn.o_proj.bias")
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate = h @ W[p + "mlp.gate_proj.weight"].T + b(p + "mlp.gate_proj.bias")
        up = h @ W[p + "mlp.up_proj.weight"].T + b(p + "mlp.up_proj.bias")
        x = x + (torch.nn.functional.silu(gate) * up) @ W[p + "mlp.down_proj.weight"].T \
            + b(p + "mlp.down_proj.bias")
    x = rms_norm(x, W["model.norm.weight"], eps)
    lm = W["model.embed_tokens.weight"] if v["tied"] else W["lm_head.weight"]
    logits = x @ lm.T
    nll = -torch.log_softmax(logits[:-1], dim=-1)[torch.arange(T - 1), torch.tensor(ids[1:])]
    m = torch.tensor(mask_w[:-1], dtype=torch.float64)
    return (m * nll).sum() / m.sum(), logits


def run_adamw(v, stored, ids, mask_w):
    """ADAMW_STEPS steps of torch.optim.AdamW from the stored weights; returns (params, losses)."""
    W = {n: t.to(torch.float64).clone().requires_grad_(True) for n, t in stored.items()}
    names = sorted(W)
    mats = [W[n] for n in names if W[n].dim() == 2]
    vecs = [W[n] for n in names if W[n].dim() != 2]
    opt = torch.optim.AdamW([{"params": mats, "weight_decay": ADAMW["weight_decay"]},
                             {"params": vecs, "weight_decay": 0.0}],
                            lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses = []
    for _ in range(ADAMW_STEPS):
        opt.zero_grad()
        loss, _ = forward(v, W, ids, mask_w)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    return {n: t.detach().clone() for n, t in W.items()}, losses


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def main():
    tmp_root = OUT_DIR + ".grad.tmp"
    shutil.rmtree(tmp_root, ignore_errors=True)
    os.makedirs(tmp_root)
    for v in VARIANTS:
        vd = os.path.join(tmp_root, v["name"])
        os.makedirs(vd)
        stored, ids = make_weights(v)
        with open(os.path.join(vd, "config.json"), "w") as f:
            f.write(json.dumps(make_config(v), indent=2) + "\n")
        write_safetensors(os.path.join(vd, "model.safetensors"), stored)
        back = read_safetensors(os.path.join(vd, "model.safetensors"))
        assert set(back) == set(stored)
        for n in stored:
            assert torch.equal(back[n], stored[n].to(torch.float64)), n

        mask_w = [1.0 if T // 2 - 1 <= t < T - 1 else 0.0 for t in range(T)]
        W = {n: t.to(torch.float64).requires_grad_(True) for n, t in stored.items()}
        keep = []
        loss, logits = forward(v, W, ids, mask_w, keep)
        loss.backward()
        grads = {n: t.grad.detach().clone() for n, t in W.items()}

        # ---- self-checks
        if v["spans"] is not None:
            causal = torch.ones(T, T, dtype=torch.bool).tril()
            ms = masks_of(v)
            assert any(not torch.equal(m, causal) for lm in ms for m in lm)
            assert any(torch.equal(m, causal) for lm in ms for m in lm)
        # directional derivative: (L(W + e D) - L(W - e D)) / 2e == <grad, D>
        g = torch.Generator().manual_seed(v["seed"] + 1)
        dirs = {n: torch.randn(t.shape, generator=g, dtype=torch.float64) for n, t in W.items()}
        with torch.no_grad():
            e = 1e-5
            lp, _ = forward(v, {n: W[n] + e * dirs[n] for n in W}, ids, mask_w)
            lm_, _ = forward(v, {n: W[n] - e * dirs[n] for n in W}, ids, mask_w)
            fd = (lp - lm_).item() / (2 * e)
        an = sum((grads[n] * dirs[n]).sum().item() for n in W)
        assert abs(fd - an) <= 1e-6 * max(1.0, abs(an)), (v["name"], fd, an)
        for n, t in grads.items():
            assert t.abs().max().item() > 0, f"{v['name']}: zero gradient for {n}"

        out = {n: t.contiguous() for n, t in grads.items()}
        for l, (q, k, val, o) in enumerate(keep):
            out[f"hook.{l}.q"] = q.contiguous()
            out[f"hook.{l}.k"] = k.contiguous()
            out[f"hook.{l}.v"] = val.contiguous()
            out[f"hook.{l}.d_out"] = o.grad.detach().reshape(T, v["heads"], head_dim(v)).contiguous()
        out["logits"] = logits.detach().contiguous()
        write_safetensors(os.path.join(vd, "grads.safetensors"), out)
        back = read_safetensors(os.path.join(vd, "grads.safetensors"))
        for n in out:
            assert torch.equal(back[n], out[n]), n
        exp = {"variant": v["name"], "ids": ids, "loss_mask": mask_w, "spans": v["spans"],
               "loss": loss.item()}
        if v.get("adamw"):
            params, losses = run_adamw(v, stored, ids, mask_w)
            assert abs(losses[0] - loss.item()) < 1e-12
            params["losses"] = torch.tensor(losses, dtype=torch.float64)
            write_safetensors(os.path.join(vd, "adamw.safetensors"), params)
            exp["adamw"] = dict(ADAMW, steps=ADAMW_STEPS)
            print(f"{v['name']}: AdamW losses {losses[0]:.6f} -> {losses[-1]:.6f}")
        with open(os.path.join(vd, "grad_expected.json"), "w") as f:
            f.write(json.dumps(exp) + "\n")
        print(f"{v['name']}: loss {loss.item():.6f}  fd {fd:.9f} vs {an:.9f}")

    for v in VARIANTS:
        dst = os.path.join(OUT_DIR, v["name"])
        shutil.rmtree(dst, ignore_errors=True)
        os.rename(os.path.join(tmp_root, v["name"]), dst)
    shutil.rmtree(tmp_root)
    print("wrote", ", ".join(os.path.join(OUT_DIR, v["name"]) for v in VARIANTS))


if __name__ == "__main__":
    main()
