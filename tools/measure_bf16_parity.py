#!/usr/bin/env python3
"""How far Hugging Face transformers itself lands from its fp32 reference when it runs a parity fixture in bf16.

The GPU parity test (tests/cuda/test_cuda_forward.cpp) compares lcllm's bf16 CUDA forward against transformers'
fp32 logits. This script measures the peer's own bf16 error on the same fixtures (weights loaded as bf16, eager
attention, bf16 activations — what `from_pretrained(dtype=torch.bfloat16)` runs), teacher-forced over prompt +
greedy tokens like the test, and writes `bf16_peer` into each fixture's reference.json:
    {"transformers_bf16_worst_rel_err": worst over rows of ||Δ|| / ||ref||, "device": ..., "torch": ...}

    python3 tools/measure_bf16_parity.py tests/fixtures/parity [--device cpu|cuda]
"""
import argparse
import json
import pathlib
import re

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


def dump_json(obj, path):
    """As tools/make_parity_fixtures.py writes it: indent 2, lists of plain numbers on one line."""
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    text = re.sub(r"\[\s*((?:-?[0-9.eE+-]+\s*,\s*)*-?[0-9.eE+-]+)\s*\]",
                  lambda m: "[" + ", ".join(s.strip() for s in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    for ref_path in sorted(pathlib.Path(args.root).glob("*/reference.json")):
        d = ref_path.parent
        ref = json.loads(ref_path.read_text())
        ids = ref["prompt_ids"] + ref["greedy_ids"][:-1]
        want = load_file(str(d / "logits.safetensors"))["logits"].float()[: len(ids)]
        model = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.bfloat16, attn_implementation="eager")
        model.to(args.device).eval()
        with torch.no_grad():
            got = model(torch.tensor([ids], device=args.device)).logits[0].float().cpu()
        err = ((got - want).norm(dim=-1) / want.norm(dim=-1)).max().item()
        ref["bf16_peer"] = {"transformers_bf16_worst_rel_err": err, "device": args.device, "torch": torch.__version__}
        dump_json(ref, ref_path)
        print(f"{d.name}: transformers bf16 vs fp32 worst rel err {err:.4g}")


if __name__ == "__main__":
    main()
