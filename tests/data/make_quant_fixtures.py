#!/usr/bin/python3
"""The gguf-py quantisation oracle for tests/test_gguf_write.cpp: gguf.quants.quantize of a fixed
random input, for every type gguf-py can quantise (BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; F16 is
numpy's astype). Our reference quantisers (src/gguf/quantize.cpp) must give the same bytes.

    PYTHONPATH=/path/to/llama.cpp/gguf-py /usr/bin/python3 tests/data/make_quant_fixtures.py

Writes tests/data/gguf/quant_oracle.gguf (seeded: re-running rewrites the same bytes):
  "input"   F32 [rows 6, cols 256]: row 0 normal(0, 1); row 1 normal * 1e-3; row 2 uniform
            integers -8..8 (ties of every rounding rule); row 3 has a block of zeros, a constant
            block and a block with one huge outlier; row 4 values around the f16 subnormal range;
            row 5 normal(3, 0.5) (all positive: the Q4_1 / Q5_1 minimum is not 0).
  "<TYPE>"  the input quantised to TYPE by gguf.quants.quantize (raw bytes, same shape).
"""
import os
import sys
import types

import numpy as np

if "sentencepiece" not in sys.modules:
    try:
        import sentencepiece  # noqa: F401
    except ImportError:
        sys.modules["sentencepiece"] = types.ModuleType("sentencepiece")
        sys.modules["sentencepiece"].SentencePieceProcessor = None

import gguf  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402

SEED = 20261203
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gguf", "quant_oracle.gguf")
TYPES = [T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]


def make_input(rng):
    x = np.zeros((6, 256), dtype=np.float32)
    x[0] = rng.standard_normal(256)
    x[1] = rng.standard_normal(256) * 1e-3
    x[2] = rng.integers(-8, 9, 256)
    x[3] = rng.standard_normal(256)
    x[3, 0:32] = 0
    x[3, 32:64] = 0.75
    x[3, 64 + 5] = 1e4
    x[4] = rng.standard_normal(256) * 1e-6
    x[5] = 3 + 0.5 * rng.standard_normal(256)
    return x.astype(np.float32)


def main():
    rng = np.random.default_rng(SEED)
    x = make_input(rng)
    w = gguf.GGUFWriter(OUT, "quant-oracle")
    w.add_tensor("input", x)
    for t in TYPES:
        if t == T.F16:
            w.add_tensor(t.name, x.astype(np.float16))
        else:
            w.add_tensor(t.name, gguf.quants.quantize(x, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    r = gguf.GGUFReader(OUT)
    names = [t.name for t in r.tensors]
    assert names == ["input"] + [t.name for t in TYPES], names
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
