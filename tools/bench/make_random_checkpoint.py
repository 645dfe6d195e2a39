#!/usr/bin/env python3
"""A Hugging Face model directory with random bf16 weights in a real model's shape plus a real tokenizer, for
serving benchmarks where `lcllm serve` needs a tokenizer and chat template (tools/bench/load_test.py on the GPU).

    python3 tools/bench/make_random_checkpoint.py configs/models/llama-3.2-1b.json ../shared/assets/tokenizers/llama3 OUT
"""
import json
import pathlib
import shutil
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    config_path, tokenizer_dir, out = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    d = json.loads(pathlib.Path(config_path).read_text())
    cfg = AutoConfig.for_model(d.pop("model_type"), **d)
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")


if __name__ == "__main__":
    main()
