#!/usr/bin/env python3
"""Writes the seed corpus for tests/fuzz/fuzz_safetensors: a few small valid files and one file per common
corruption, so libFuzzer starts from the interesting structure instead of random bytes.

Standard library only. Run from anywhere: python3 tools/make_fuzz_corpus.py
"""
import json
import pathlib
import struct

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fuzz" / "corpus" / "safetensors"


def image(header, data=b"", pad=True):
    """u64 little-endian header length, the header, the data; `header` is a dict or raw str/bytes."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode()
    if pad:  # the reference writer pads with spaces so the data buffer is 8-aligned
        header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def tensors(*specs, metadata=None):
    """specs: (name, dtype, shape, data bytes) laid out back to back -> (header dict, data)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in specs:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def f32(*v):
    return struct.pack(f"<{len(v)}f", *v)


def main():
    entry = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    files = {
        "valid_f32": image(*tensors(("w", "F32", [2, 2], f32(1, 2, 3, 4)))),
        "valid_mixed": image(*tensors(
            ("a", "F16", [3], struct.pack("<3H", 0x3C00, 0xC000, 0x7BFF)),
            ("b", "BF16", [1, 2], struct.pack("<2H", 0x3FC0, 0xC380)),
            ("c", "F32", [1], f32(0.5)),
            metadata={"format": "pt"})),
        "valid_scalar_and_empty": image(*tensors(("s", "F32", [], f32(7)), ("z", "BF16", [0, 4], b""))),
        "valid_no_tensors": image({}),
        "invalid_short": b"\x10\x00\x00",
        "invalid_header_len": struct.pack("<Q", 1 << 40) + b"{}",
        "invalid_not_json": image('{"w":{"dtype":"F32",', pad=False),
        "invalid_duplicate": image('{"w":%s,"w":%s}' % (json.dumps(entry), json.dumps(entry)), f32(1, 2)),
        "invalid_dtype_i64": image({"x": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)),
        "invalid_overlap": image({"a": entry, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},
                                 bytes(12)),
        "invalid_gap": image({"a": entry, "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}},
                             bytes(16)),
        "invalid_trailing": image({"a": entry}, bytes(12)),
        "invalid_size": image({"a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
        "invalid_metadata": image({"__metadata__": {"step": 1}}),
        "invalid_overflow": image({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 2],
                                         "data_offsets": [0, 8]}}, bytes(8)),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (OUT / f"{name}.safetensors").write_bytes(data)
    print(f"wrote {len(files)} files to {OUT}")


if __name__ == "__main__":
    main()
