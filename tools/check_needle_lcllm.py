#!/usr/bin/env python3
"""NIAH spot check of a needle model through the `lcllm run` CLI (CPU or GPU), with the same prompts as
tools/eval_needle_transformers.py (the lcllm_eval.json contract).

The prompt is built as text, tokenized with the model's tokenizer by transformers, and passed as --prompt-ids;
the first prompt is also tokenized by `lcllm tokenize` to show both tokenizers agree. Greedy, 12 new tokens;
exact match of the text up to the first ".".

Usage: python3 tools/check_needle_lcllm.py models/needle --lcllm build/lcllm --lengths 4k,16k --depths 0,50,100
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needle_contract  # noqa: E402
from eval_needle_transformers import parse_depths, parse_length  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="model directory (tokenizer, lcllm_eval.json task text)")
    ap.add_argument("--lcllm", default="build/lcllm", help="the lcllm binary")
    ap.add_argument("--lengths", default="4k,16k", help="context lengths in tokens (k = 1024)")
    ap.add_argument("--depths", default="0,25,50,75,100", help="needle depths in percent: a:b:step or a list")
    ap.add_argument("--samples", type=int, default=1, help="prompts per (length, depth)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the haystacks, keys and values")
    ap.add_argument("--device", default="cpu", help="lcllm --device")
    ap.add_argument("--out", help="write the results JSON here")
    args = ap.parse_args()

    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    rng = random.Random(args.seed)
    rows, checked_tokenizer = [], False
    for length in (parse_length(x) for x in args.lengths.split(",")):
        for depth in parse_depths(args.depths):
            for _ in range(args.samples):
                prompt, answer = needle_contract.niah_single_prompt(rng, tok, length, depth)
                ids = tok(prompt).input_ids
                if not checked_tokenizer:
                    res = subprocess.run([args.lcllm, "tokenize", "--tokenizer", args.model, "--special"],
                                         input=json.dumps(prompt) + "\n", capture_output=True, text=True, check=True)
                    same = json.loads(res.stdout) == ids
                    print("lcllm tokenize == transformers tokenizer on a %d-token prompt: %s" % (len(ids), same))
                    checked_tokenizer = True
                t0 = time.time()
                res = subprocess.run([args.lcllm, "run", args.model, "--prompt-ids", ",".join(map(str, ids)),
                                      "-n", "12", "--temperature", "0", "-q", "--device", args.device,
                                      "-c", str(len(ids) + 64)], capture_output=True, text=True)
                if res.returncode != 0:
                    sys.exit("lcllm run failed: " + res.stderr[-2000:])
                got = needle_contract.extract_answer(res.stdout)
                ok = got == answer
                rows.append({"context_length": length, "prompt_tokens": len(ids), "depth_percent": depth,
                             "expected": answer, "generated": res.stdout.strip()[:60], "score": float(ok),
                             "seconds": round(time.time() - t0, 1)})
                print("%6d tokens depth %3d%%: %-8s %s -> %r (%.0f s)" % (len(ids), depth, "ok" if ok else "WRONG",
                      answer, res.stdout.strip()[:40], time.time() - t0), flush=True)
    acc = sum(r["score"] for r in rows) / len(rows)
    print("lcllm NIAH exact match: %d/%d = %.3f" % (sum(r["score"] for r in rows), len(rows), acc))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "rows": rows, "accuracy": acc}, f, indent=1)


if __name__ == "__main__":
    main()
