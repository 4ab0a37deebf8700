#!/usr/bin/python3
"""Writes the seed corpora of fuzz/corpus/<target>/ (from the repository root:
/usr/bin/python3 fuzz/corpus/make_seeds.py). Each seed is a small valid file of its parser's
format, so that the fuzzer starts from inputs that reach deep into the parser; most are cut down
from the test fixtures and shipped data. Needs Debian's python3 and python3-sentencepiece."""
import io
import json
import os
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) <= 64 * 1024, f"{target}/{name}: {len(data)} bytes, fuzz.sh reads 64 KiB"
    (d / name).write_bytes(data)


# ---- safetensors -----------------------------------------------------------------------------

def f16(x):
    return struct.pack("<e", x)


def bf16(x):
    return struct.pack("<f", x)[2:]


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape)], values i / 16 in order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        vals = [((i % 31) - 15) / 16 for i in range(n)]
        if dtype == "F32":
            blob = b"".join(struct.pack("<f", v) for v in vals)
        elif dtype == "F16":
            blob = b"".join(f16(v) for v in vals)
        else:
            blob = b"".join(bf16(v) for v in vals)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# The config fuzz_safetensors.cpp writes beside the input: C 4, F 8, 1 layer, H 2, G 1, V 8.
def tiny_model(dtype):
    C, F, V, QD, KD = 4, 8, 8, 4, 2
    t = [("model.embed_tokens.weight", dtype, [V, C]), ("model.norm.weight", dtype, [C]),
         ("lm_head.weight", dtype, [V, C])]
    p = "model.layers.0."
    t += [(p + "input_layernorm.weight", dtype, [C]),
          (p + "self_attn.q_proj.weight", dtype, [QD, C]),
          (p + "self_attn.k_proj.weight", dtype, [KD, C]),
          (p + "self_attn.v_proj.weight", dtype, [KD, C]),
          (p + "self_attn.o_proj.weight", dtype, [C, QD]),
          (p + "post_attention_layernorm.weight", dtype, [C]),
          (p + "mlp.gate_proj.weight", dtype, [F, C]),
          (p + "mlp.up_proj.weight", dtype, [F, C]),
          (p + "mlp.down_proj.weight", dtype, [C, F])]
    return t


for dt in ("F32", "F16", "BF16"):
    write("safetensors", f"tiny-{dt.lower()}.safetensors", safetensors(tiny_model(dt)))
write("safetensors", "metadata.safetensors",
      safetensors([("a", "F32", [2, 3]), ("b", "F16", [0]), ("c", "BF16", [])],
                  {"format": "pt", "note": "x"}))

# ---- profile ---------------------------------------------------------------------------------

write("profile", "entry.safetensors",
      safetensors([("influence", "F32", [1, 2, 2, 2])],
                  {"format": "moa-profile/1", "length": "100", "block": "64", "samples": "3",
                   "model": "tiny", "influence": "entry"}))
write("profile", "tile.safetensors",
      safetensors([("influence", "F32", [2, 1, 3, 3])],
                  {"format": "moa-profile/1", "length": "12", "block": "4", "samples": "1",
                   "model": "", "influence": "tile"}))
write("profile", "no-kind.safetensors",
      safetensors([("influence", "F32", [1, 1, 1, 1])],
                  {"format": "moa-profile/1", "length": "1", "block": "64", "samples": "0"}))

# ---- config.json -----------------------------------------------------------------------------

for p in sorted((ROOT / "tests/data/configs").glob("*.json")):
    write("config", p.name, p.read_bytes())
for d in ("convert/tiny", "fixtures/qwen2_bias_f16", "fixtures/mistral_f32",
          "fixtures/llama_linear_rope"):
    write("config", d.replace("/", "-") + ".json", (ROOT / "tests/data" / d / "config.json").read_bytes())

# ---- tokenizer.json --------------------------------------------------------------------------

write("tokenizer_json", "bytelevel.json", (ROOT / "tests/data/tokenizers/bytelevel/tokenizer.json").read_bytes())


def cut_tokenizer(name, keep):
    """The real tokenizer.json with its vocabulary cut to the `keep` first ids (plus the added
    tokens) and the merges among them: every pipeline component of the real file, small."""
    j = json.loads((ROOT / f"tests/data/tokenizers/{name}/tokenizer.json").read_text())
    m = j["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < keep}
    merges = []
    for mg in m["merges"]:
        a, b = mg if isinstance(mg, list) else mg.split(" ", 1)
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(mg)
    m["vocab"], m["merges"] = vocab, merges
    j["added_tokens"] = [t for t in j["added_tokens"]][:4]
    for t in j["added_tokens"]:
        t["id"] = min(t["id"], keep + len(j["added_tokens"]))
    return json.dumps(j, ensure_ascii=False, separators=(",", ":"))


write("tokenizer_json", "llama2-cut.json", cut_tokenizer("llama2", 600))
write("tokenizer_json", "llama3-cut.json", cut_tokenizer("llama3", 500))
write("tokenizer_json", "qwen3-cut.json", cut_tokenizer("qwen3", 500))

# ---- tokenizer.model -------------------------------------------------------------------------

import sentencepiece as spm  # noqa: E402

TEXT = ["The quick brown fox jumps over the lazy dog.",
        "Numbers like 12345 and 3.14159 are split into digits.",
        "Hello world! Hello again, world. Gr\u00fc\u00dfe aus M\u00fcnchen, caf\u00e9 au lait."] * 20
for kind, vocab, extra in (("bpe", 340, "byte_fallback=True, split_digits=True"),
                           ("unigram", 100, "byte_fallback=False")):
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT), model_writer=buf, model_type=kind, vocab_size=vocab,
        normalization_rule_name="identity", character_coverage=1.0, hard_vocab_limit=False,
        minloglevel=2, **dict(kv.split("=") for kv in extra.split(", ")))
    write("sentencepiece", f"{kind}.model", buf.getvalue())

# ---- plans -----------------------------------------------------------------------------------

for f in ("moa_alpha_beta.json", "streamingllm_alpha_beta.json"):
    write("plan", "llama-3.2-1b-" + f,
          (ROOT / "data/moa-reference/plans/meta-llama--Llama-3.2-1B-Instruct" / f).read_bytes())
write("plan", "reference-compact.json",
      '{"alphas": [[0, 1024, -2048.0, 0.1], [64, 0, 0, 1]], '
      '"betas": [[0.125, 1, 0.3333333333333333, 1e-07], [0, 0.5, 1.0, 0]], "note": "x"}')
write("plan", "extended.json", json.dumps({
    "format": "moa-plan/1", "model": "tiny", "sink": 32, "block": 32, "min_cache": 64,
    "per_kv_head": True,
    "rules": [{"max_length": 4096, "alphas": [[128, 256]], "betas": [[0.25, 0.5]]},
              {"max_length": None, "alphas": [[512, 0]], "betas": [[0.125, 1.0]]}],
    "density": {"2048": 0.5, "8192": 0.25}, "lengths": {"4096": {"kv": 0.5}}, "extra": [1, 2]},
    indent=2))

# ---- JSONL -----------------------------------------------------------------------------------

longeval = (ROOT / "data/moa-reference/longeval_70_lines.jsonl").read_text().splitlines()[0]
write("jsonl", "longeval-reference.jsonl", longeval + "\n")
write("jsonl", "calib.jsonl",
      '{"prompt": "What is 2+2?", "answer": " 4", "prompt_tokens": 7}\n\n'
      '{"prompt": "line a-b: REGISTER_CONTENT is <123>", "expected_number": 123}\n')
write("jsonl", "passkey.jsonl",
      '{"prompt": "The pass key is 12345. Remember it.", "expected_number": 12345, "depth": 0.5}\r\n'
      '{"prompt": "x", "expected_number": 7, "num_lines": 3, "random_idx": ["k", 2]}\n')
