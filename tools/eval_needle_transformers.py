#!/usr/bin/env python3
"""Transformers-side accuracy check of the needle model: NIAH (single needle) over lengths x depths, and the
RULER-style tasks niah_multikey / niah_multivalue / niah_multiquery / vt, with greedy generation.

Prompts follow the lcllm_eval.json contract that `lcllm eval` also follows (tools/needle_contract.py):
BOS + haystack (filler sentences joined with " ", the needle at the sentence boundary nearest the depth) + " " +
query. Score: exact match of the text generated up to the first ".", newline or EOS, trimmed.

Usage: python3 tools/eval_needle_transformers.py models/needle --lengths 1k,4k,16k --depths 0:100:10
           --samples 5 --out results.json
"""
import argparse
import json
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needle_contract  # noqa: E402


def parse_length(s):
    s = s.strip().lower()
    return int(float(s[:-1]) * 1024) if s.endswith("k") else int(s)


def parse_depths(spec):
    if ":" in spec:
        a, b, step = (int(x) for x in spec.split(":"))
        return list(range(a, b + 1, step))
    return [int(x) for x in spec.split(",")]


@torch.no_grad()
def generate(model, tok, prompts, max_new_tokens, device):
    """Greedy continuations of prompts of equal-ish length, batched with left padding."""
    enc = [tok(p).input_ids for p in prompts]
    width = max(len(e) for e in enc)
    ids = torch.full((len(enc), width), tok.eos_token_id, dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, e in enumerate(enc):
        ids[i, width - len(e):] = torch.tensor(e)
        mask[i, width - len(e):] = 1
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                         do_sample=False, pad_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)
    return [tok.decode(o[width:], skip_special_tokens=True) for o in out], [len(e) for e in enc]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="Hugging Face model directory (with lcllm_eval.json's task text)")
    ap.add_argument("--lengths", default="1k,2k,4k,8k,16k", help="context lengths in tokens (k = 1024)")
    ap.add_argument("--depths", default="0:100:10", help="needle depths in percent: a:b:step or a list")
    ap.add_argument("--samples", type=int, default=5, help="prompts per (length, depth) cell and per RULER task")
    ap.add_argument("--ruler", default="niah_multikey,niah_multivalue,niah_multiquery,vt",
                    help="RULER-style tasks to run at every length ('' = none)")
    ap.add_argument("--batch", type=int, default=8, help="prompts generated together (left-padded)")
    ap.add_argument("--seed", type=int, default=42, help="seed of the haystacks, keys and values")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device (bf16 on cuda, fp32 on cpu)")
    ap.add_argument("--out", help="write the results JSON here")
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype, attn_implementation="sdpa")
    model.to(args.device).eval()
    rng = random.Random(args.seed)
    lengths = [parse_length(x) for x in args.lengths.split(",")]
    depths = parse_depths(args.depths)
    results = {"model": args.model, "niah": [], "ruler": [], "samples": args.samples}
    t0 = time.time()
    for length in lengths:
        cells = [(d, *needle_contract.niah_single_prompt(rng, tok, length, d)) for d in depths
                 for _ in range(args.samples)]
        scores = {d: [] for d in depths}
        for i in range(0, len(cells), args.batch):
            chunk = cells[i:i + args.batch]
            gens, n_tok = generate(model, tok, [c[1] for c in chunk], 12, args.device)
            for (d, _, answer), g in zip(chunk, gens):
                scores[d].append(float(needle_contract.extract_answer(g) == answer))
        for d in depths:
            acc = sum(scores[d]) / len(scores[d])
            results["niah"].append({"context_length": length, "depth_percent": d, "accuracy": acc,
                                    "n": len(scores[d])})
        row = " ".join("%3.0f" % (100 * sum(scores[d]) / len(scores[d])) for d in depths)
        print("niah %6d tokens (prompt ~%d): %s   [%.0f s]" % (length, max(n_tok), row, time.time() - t0),
              flush=True)
        for task in [t for t in args.ruler.split(",") if t]:
            prompts = [needle_contract.ruler_prompt(rng, tok, task, length) for _ in range(args.samples)]
            exact, part = [], []
            for i in range(0, len(prompts), args.batch):
                chunk = prompts[i:i + args.batch]
                gens, _ = generate(model, tok, [p for p, _ in chunk], 40, args.device)
                for (_, answer), g in zip(chunk, gens):
                    got = needle_contract.extract_answer(g)
                    exact.append(float(got == answer))
                    refs = answer.split(needle_contract.CONTRACT["answer_separator"])
                    part.append(sum(r.lower() in g.lower() for r in refs) / len(refs))
            rec = {"task": task, "context_length": length, "exact": sum(exact) / len(exact),
                   "string_match_all": sum(part) / len(part), "n": len(exact)}
            results["ruler"].append(rec)
            print("  %-16s exact %.2f  string_match_all %.2f" % (task, rec["exact"], rec["string_match_all"]),
                  flush=True)
    results["seconds"] = round(time.time() - t0, 1)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    worst = min(r["accuracy"] for r in results["niah"])
    print("worst NIAH cell: %.2f" % worst)


if __name__ == "__main__":
    main()
