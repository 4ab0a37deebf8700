#!/usr/bin/python3
"""PyTorch CPU reference for training speed: the same Llama shape as a moa config.json, f32,
AdamW, causal attention written out (Debian's torch 1.13 has no public SDPA), loss on every
token. Prints one JSON line: tokens_per_s (median over steps after one warm-up step).

  /usr/bin/python3 bench/torch/train_step.py CONFIG.json --seq 512 --batch 4 --steps 5 --threads 2
"""
import argparse, json, math, statistics, time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("config")
p.add_argument("--seq", type=int, default=512)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--steps", type=int, default=5)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
c = json.load(open(a.config))
C, F_, L, H = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["num_attention_heads"]
G = c.get("num_key_value_heads", H)
D = c.get("head_dim", C // H)
V = c["vocab_size"]
theta = c.get("rope_theta", 10000.0)


def lin(o, i):
    return torch.nn.Parameter(torch.randn(o, i) * 0.02)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = torch.nn.Parameter(torch.ones(C)), torch.nn.Parameter(torch.ones(C))
        self.q, self.k, self.v, self.o = lin(H * D, C), lin(G * D, C), lin(G * D, C), lin(C, H * D)
        self.g, self.u, self.d = lin(F_, C), lin(F_, C), lin(C, F_)


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):  # x (B, h, T, D), rotate-half
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


blocks = torch.nn.ModuleList([Block() for _ in range(L)])
emb, head, fnorm = lin(V, C), lin(V, C), torch.nn.Parameter(torch.ones(C))
params = list(blocks.parameters()) + [emb, head, fnorm]
opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.1)
inv = 1.0 / theta ** (torch.arange(0, D, 2).float() / D)
ang = torch.arange(a.seq).float()[:, None] * inv[None]
cos, sin = ang.cos(), ang.sin()
mask = torch.full((a.seq, a.seq), float("-inf")).triu(1)


def step(ids):
    x = emb[ids]
    B, T = ids.shape
    for b in blocks:
        h = rms(x, b.n1)
        q = (h @ b.q.T).view(B, T, H, D).transpose(1, 2)
        k = (h @ b.k.T).view(B, T, G, D).transpose(1, 2)
        v = (h @ b.v.T).view(B, T, G, D).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k, v = k.repeat_interleave(H // G, 1), v.repeat_interleave(H // G, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + mask, -1)
        x = x + (att @ v).transpose(1, 2).reshape(B, T, H * D) @ b.o.T
        h = rms(x, b.n2)
        x = x + (F.silu(h @ b.g.T) * (h @ b.u.T)) @ b.d.T
    logits = rms(x, fnorm) @ head.T
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()


times = []
for s in range(a.steps + 1):
    ids = torch.randint(0, V, (a.batch, a.seq))
    t0 = time.perf_counter()
    step(ids)
    if s > 0:
        times.append(time.perf_counter() - t0)
tok_s = a.batch * a.seq / statistics.median(times)
print(json.dumps({"engine": "pytorch " + torch.__version__, "seq": a.seq, "batch": a.batch,
                  "threads": a.threads, "tokens_per_s": tok_s}))
