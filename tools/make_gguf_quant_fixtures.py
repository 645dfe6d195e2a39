#!/usr/bin/env python3
"""Reference fixtures for GGUF dequantization (E10 item 2): random ggml blocks and what the `gguf` package makes
of them.

For every type lcllm dequantizes (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) this writes
  tests/fixtures/gguf_quants/<TYPE>.bin  raw block bytes: 8 blocks of a 32-weight type, 4 super-blocks of a
                                         256-weight K-quant, 256 elements of a plain float type
  tests/fixtures/gguf_quants/<TYPE>.f32  gguf.quants.dequantize of those bytes, float32 little-endian
tests/io/test_gguf_quants.cpp checks src/io/gguf_dequantize.cpp against them bit for bit, block by block.

Block bytes are random except the f16 scale fields (d, m, dmin), which are finite f16 values of random sign and
magnitude 2^-14 .. 2^1 (one 32-weight block per type gets an f16-subnormal scale), so every output is finite.
Plain float types get random bit patterns minus signalling NaNs (numpy builds differ on whether a float16 ->
float32 conversion quiets them), plus +-0, +-inf, a quiet NaN and subnormals.

Rerun (deterministic, seed fixed; the committed files were made with gguf 0.19.0, numpy 2.4):
    pip install gguf numpy
    python3 tools/make_gguf_quant_fixtures.py [--out tests/fixtures/gguf_quants]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20240610

# Byte offsets of the f16 scale fields inside one block (ggml's block structs).
F16_FIELDS = {
    "Q4_0": [0],       # {f16 d; u8 qs[16]}
    "Q4_1": [0, 2],    # {f16 d; f16 m; u8 qs[16]}
    "Q5_0": [0],       # {f16 d; u32 qh; u8 qs[16]}
    "Q5_1": [0, 2],    # {f16 d; f16 m; u32 qh; u8 qs[16]}
    "Q8_0": [0],       # {f16 d; i8 qs[32]}
    "Q4_K": [0, 2],    # {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}
    "Q5_K": [0, 2],    # {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
    "Q6_K": [208],     # {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
}
PLAIN = ["F32", "F16", "BF16"]
PLAIN_ELEMENTS = 256


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    mag = np.exp2(rng.uniform(-14.0, 1.0, size=n))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (sign * mag).astype(np.float16)


def quant_blocks(rng: np.random.Generator, name: str) -> np.ndarray:
    qtype = GGMLQuantizationType[name]
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = 8 if block_size == 32 else 4
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in F16_FIELDS[name]:
        scales = random_scales(rng, n_blocks)
        if block_size == 32:
            scales[1] = np.float16(rng.integers(1, 1024) * 2.0**-24)  # an f16 subnormal scale
        blocks[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(-1)


def plain_values(rng: np.random.Generator, name: str) -> np.ndarray:
    if name == "F32":
        bits = rng.integers(0, 2**32, size=PLAIN_ELEMENTS, dtype=np.uint32)
        exp_ones, quiet, specials = 0x7F800000, 0x00400000, [0x0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x1]
    else:
        bits = rng.integers(0, 2**16, size=PLAIN_ELEMENTS, dtype=np.uint16)
        if name == "F16":
            exp_ones, quiet, specials = 0x7C00, 0x0200, [0x0, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x0001, 0x83FF]
        else:
            exp_ones, quiet, specials = 0x7F80, 0x0040, [0x0, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x807F]
    mant = np.asarray(exp_ones - 1, dtype=bits.dtype) & ~np.asarray(exp_ones, dtype=bits.dtype)
    signalling = ((bits & exp_ones) == exp_ones) & ((bits & mant) != 0) & ((bits & quiet) == 0)
    bits[signalling] |= quiet
    bits[: len(specials)] = np.array(specials, dtype=bits.dtype)
    return bits.view(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "gguf_quants"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for name in PLAIN + list(F16_FIELDS):
        raw = plain_values(rng, name) if name in PLAIN else quant_blocks(rng, name)
        ref = np.asarray(dequantize(raw, GGMLQuantizationType[name]), dtype=np.float32).reshape(-1)
        block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType[name]]
        assert ref.size == raw.size // type_size * block_size, name
        if name not in PLAIN:
            assert np.isfinite(ref).all(), f"{name}: non-finite reference output"
        raw.tofile(os.path.join(args.out, f"{name}.bin"))
        ref.astype("<f4").tofile(os.path.join(args.out, f"{name}.f32"))
        print(f"{name:5s} {raw.size:5d} bytes -> {ref.size:4d} floats, max |x| {np.nanmax(np.abs(ref)):.4g}")


if __name__ == "__main__":
    main()
