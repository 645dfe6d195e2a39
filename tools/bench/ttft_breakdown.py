#!/usr/bin/env python3
"""Sums the per-launch GPU durations ncu measured for one `lcllm bench --prefill LEN` run of one policy
(tools/bench/run_ttft_breakdown.sh) by kind of kernel. The bench runs its copy / GEMM rate measurements, then a
256-token warm-up prefill (one embedding launch), then the prefill (one embedding launch per chunk), then the decode:
the prefill is every launch from the second embedding launch up to the first decode attention or GEMV launch.
  ttft_breakdown.py NCU.csv [NCU.csv ...] [--json OUT.json] [--by-name]   (--by-name: also each kernel name's sum)
  ttft_breakdown.py --decode NCU.csv [...]   (the decode steps instead: every launch from the embedding launch of the
      first decode step on, per step — sums divided by the number of embedding launches, one a step)
  ttft_breakdown.py --reduce NCU.csv OUT.csv   (keeps the four columns this script reads, every launch; NCU.csv may be .xz)"""
import csv
import json
import lzma
import sys

KINDS = [  # (kind, substrings of the kernel name), first match wins
    ("hip mask search", ["attention_hip_mask"]),
    ("hip lists / cache", ["attention_hip_lists", "attention_hip_cache"]),
    ("attention (prefill)", ["attention_prefill", "prefill_wgmma"]),
    ("GEMM (cuBLAS)", ["nvjet", "gemm", "cutlass", "xmma"]),
    ("rope + KV write", ["rope", "kv_write"]),
    ("norms, GLU, residual adds", ["rmsnorm", "glu", "kernel_add"]),
    ("fp32 -> bf16 conversions (GEMM inputs)", ["kernel_convert"]),
]
DECODE = ["attention_decode", "gemv"]
DECODE_KINDS = [  # the decode step's kernels, by kind (first match wins)
    ("decode attention", ["attention_decode_tc", "attention_decode_v2", "kernel_attention_decode<"]),
    ("split merge", ["attention_decode_merge"]),
    ("GEMV (weights)", ["gemv"]),
    ("rope + KV write", ["rope", "kv_write"]),
    ("norms, GLU, residual adds", ["rmsnorm", "glu", "kernel_add"]),
    ("embedding, greedy argmax", ["embed", "argmax"]),
]


def launches(path):
    opener = lzma.open if path.endswith(".xz") else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    head = next(i for i, r in enumerate(rows) if r[:2] == ["ID", "Process ID"])
    names = rows[head]
    name_col, dur_col = names.index("Kernel Name"), names.index("gpu__time_duration.sum")
    for r in rows[head + 1:]:
        if len(r) != len(names) or not r[0].isdigit():
            continue  # the repeated header, the units row, the bench's own printout
        yield r[name_col], float(r[dur_col].replace(",", "")) * 1e-9


def prefill_launches(path):
    embeds = 0
    for name, sec in launches(path):
        embeds += 1 if "embed" in name else 0
        if embeds < 2:
            continue
        if any(d in name for d in DECODE):
            return
        yield name, sec


def decode_launches(path):
    """The launches of the decode steps: from the embedding launch that precedes the first decode attention launch
    (not the first GEMV: a prefill's one-row logits projection runs the GEMV too)."""
    rows = list(launches(path))
    first = next((i for i, (name, _) in enumerate(rows) if "attention_decode" in name), len(rows))
    start = max((i for i in range(first) if "embed" in rows[i][0]), default=first)
    return rows[start:]


def add(sums, counts, key, sec):
    sums[key] = sums.get(key, 0.0) + sec
    counts[key] = counts.get(key, 0) + 1


def breakdown(path, by_name=False, decode=False):
    sums, counts = {}, {}
    for name, sec in (decode_launches(path) if decode else prefill_launches(path)):
        kinds = DECODE_KINDS if decode else KINDS
        key = name[:100] if by_name else next((k for k, subs in kinds if any(s in name for s in subs)), "other")
        add(sums, counts, key, sec)
    return sums, counts


def reduce(path, out_path):
    with open(out_path, "w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["ID", "Process ID", "Kernel Name", "gpu__time_duration.sum"])
        for i, (name, sec) in enumerate(launches(path)):
            w.writerow([i, 0, name, round(sec * 1e9)])


def main(argv):
    if argv[:1] == ["--reduce"]:
        reduce(argv[1], argv[2])
        return
    by_name, decode = "--by-name" in argv, "--decode" in argv
    argv = [a for a in argv if a not in ("--by-name", "--decode")]
    out = None
    if "--json" in argv:
        i = argv.index("--json")
        out, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    result = {}
    for path in argv:
        sums, counts = breakdown(path, decode=decode)
        steps = 1
        if decode:  # per step: one embedding launch a step
            steps = max(1, sum(1 for name, _ in decode_launches(path) if "embed" in name))
            sums = {k: v / steps for k, v in sums.items()}
        total = sum(sums.values())
        unit, scale = ("ms", 1e3) if decode else ("s", 1.0)
        what = f"a decode step (mean of {steps})" if decode else "the prefill"
        print(f"{path}: {total * scale:.3f} {unit} of kernels in {what}")
        for kind, sec in sorted(sums.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:40s} {sec * scale:8.3f} {unit}  {100 * sec / total:5.1f}%  {counts[kind] / steps:8.1f} launches")
        result[path] = {"total_s": total, "steps": steps, "seconds": sums, "launches": counts}
        if by_name:
            names, name_counts = breakdown(path, by_name=True, decode=decode)
            for name, sec in sorted(names.items(), key=lambda kv: -kv[1]):
                print(f"    {sec * scale / steps:8.4f} {unit} {name_counts[name] / steps:8.1f}  {name}")
            result[path]["by_name"] = {"seconds": {k: v / steps for k, v in names.items()}, "launches": name_counts}
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
