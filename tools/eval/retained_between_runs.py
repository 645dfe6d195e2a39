#!/usr/bin/env python3
"""Compare the per-prompt cells of two `lcllm eval niah` runs over the same prompts (e.g. a bf16 and an fp8 KV
cache): for each policy directory both runs hold, prompts found by string match and the retained share of the
reference run's answer probability, mean over prompts of min(1, exp((lp_run - lp_ref) / value tokens)).
    python3 tools/eval/retained_between_runs.py REF_DIR RUN_DIR [POLICY ...]
REF_DIR and RUN_DIR are the eval's -o directories (REF_DIR/full/len_*_depth_*_sample_*.json, ...)."""
import glob
import json
import math
import os
import sys


def cells(run, policy):
    out = {}
    for f in glob.glob(os.path.join(run, policy, "*.json")):
        with open(f) as fh:
            out[os.path.basename(f)] = json.load(fh)
    return out


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ref_dir, run_dir = sys.argv[1], sys.argv[2]
    policies = sys.argv[3:] or sorted(
        d for d in os.listdir(ref_dir) if os.path.isdir(os.path.join(ref_dir, d)) and os.path.isdir(os.path.join(run_dir, d)))
    if not policies:
        sys.exit(f"error: {ref_dir} and {run_dir} share no policy directory")
    print("| policy | prompts | found ref / run | log-prob per token ref / run | run retains of ref |")
    print("|---|---:|---:|---:|---:|")
    for p in policies:
        ref, run = cells(ref_dir, p), cells(run_dir, p)
        keys = sorted(k for k in ref if k in run)
        if not keys:
            sys.exit(f"error: no prompt in both {ref_dir}/{p} and {run_dir}/{p}")
        for k in keys:
            same = all(ref[k].get(f) == run[k].get(f) for f in ("needle", "expected_answer", "prompt_tokens", "value_tokens"))
            if not same:
                sys.exit(f"error: {p}/{k} is not the same prompt in both runs")
        scored = lambda d, k: d[k].get("value_logprob") is not None and (d[k].get("value_tokens") or 0) > 0
        skipped = len(keys)
        keys = [k for k in keys if scored(ref, k) and scored(run, k)]  # an unscored cell has a null log-prob
        skipped -= len(keys)
        if not keys:
            sys.exit(f"error: no prompt of {p} was scored in both runs")
        kept = [min(1.0, math.exp((run[k]["value_logprob"] - ref[k]["value_logprob"]) / run[k]["value_tokens"])) for k in keys]
        lp = lambda d: sum(d[k]["value_logprob"] / d[k]["value_tokens"] for k in keys) / len(keys)
        found = lambda d: sum(d[k]["score"] > 0 for k in keys)
        note = f" ({skipped} unscored left out)" if skipped else ""
        print(f"| {p} | {len(keys)}{note} | {found(ref)} / {found(run)} | {lp(ref):.3f} / {lp(run):.3f} | {100 * sum(kept) / len(kept):.1f}% |")


if __name__ == "__main__":
    main()
