#!/usr/bin/env python3
"""Reference data for the real GGUF models (E10 items 4 and 6), from Hugging Face transformers loading the same GGUF
files (`from_pretrained(dir, gguf_file=...)`, which dequantizes them itself):

  tests/fixtures/tokenizer/smollm2_gguf.jsonl   transformers' GGUF tokenizer for SmolLM2 on the 2,015 strings of the
                                               tokenizer corpus (ids without and with special tokens, decoded text)
  tests/fixtures/gguf_parity/<model>.json        per prompt: the prompt ids, 32 greedy tokens, and teacher-forced
                                               fp32 logits at the last prompt row and at decode steps 8, 16 and 31,
                                               on a fixed seeded subset of 2,048 vocabulary ids (the full rows would
                                               be 8 x 262k floats for Gemma 3)

  python3 tools/make_gguf_refs.py [MODEL_CACHE]     (pip install torch transformers gguf accelerate sentencepiece)

MODEL_CACHE is where tools/fetch_models.sh put the files (default: $LCLLM_MODEL_CACHE or ~/.cache/lcllm/models).
"""
import json
import os
import random
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
}
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Photosynthesis is the process by which green plants",
    "Q: What is 17 multiplied by 23?\nA:",
    "The three primary colors are",
    "In 1969, Neil Armstrong became the first person to",
    "Here is a list of fruits: apple, banana, cherry,",
]
STEPS = 32
ROWS = (8, 16, 31)        # decode steps whose logits are kept, besides the last prompt row
SUBSET = 2048             # vocabulary ids kept per row


def tokenizer_refs(cache):
    tok = AutoTokenizer.from_pretrained(cache, gguf_file=MODELS["smollm2-135m"])
    texts = [json.loads(l)["text"] for l in open(os.path.join(ROOT, "tests/fixtures/tokenizer/gemma3.jsonl"))]
    out = os.path.join(ROOT, "tests/fixtures/tokenizer/smollm2_gguf.jsonl")
    with open(out, "w") as f:
        for t in texts:
            ids = tok(t, add_special_tokens=False)["input_ids"]
            ids_special = tok(t, add_special_tokens=True)["input_ids"]
            f.write(json.dumps({"text": t, "ids": ids, "ids_special": ids_special,
                                "decoded": tok.decode(ids)}, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {len(texts)} strings")


def parity_refs(cache, name, file):
    tok = AutoTokenizer.from_pretrained(cache, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(cache, gguf_file=file, dtype=torch.float32)
    model.eval()
    vocab = model.config.vocab_size
    subset = sorted(random.Random(1234).sample(range(vocab), SUBSET))
    cases = []
    for p in PROMPTS:
        ids = tok(p)["input_ids"]
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=STEPS, do_sample=False, min_new_tokens=STEPS)
            cont = out[0].tolist()[len(ids):]
            logits = model(torch.tensor([ids + cont])).logits[0]
        rows = {}
        for step in (0,) + ROWS:  # step 0: the last prompt row predicts cont[0]
            r = len(ids) - 1 + step
            rows[str(step)] = [float("%.7g" % float(logits[r, v])) for v in subset]  # 7 digits: well under 1e-4
        cases.append({"prompt": p, "prompt_ids": ids, "continuation": cont, "rows": rows})
    path = os.path.join(ROOT, f"tests/fixtures/gguf_parity/{name}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"model": name, "gguf": file, "vocab_subset": subset, "steps": STEPS, "cases": cases}, f)
    print(f"wrote {path}")


def main():
    cache = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "LCLLM_MODEL_CACHE", os.path.expanduser("~/.cache/lcllm/models"))
    torch.manual_seed(0)
    tokenizer_refs(cache)
    for name, file in MODELS.items():
        parity_refs(cache, name, file)


if __name__ == "__main__":
    main()
