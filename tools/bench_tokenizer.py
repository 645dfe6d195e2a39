#!/usr/bin/env python3
"""Encode throughput (MB/s, one thread) of lcllm vs Hugging Face `tokenizers`, same corpus, same run.

The corpus is the committed reference corpus (tests/fixtures/tokenizer/<name>.jsonl, ~2000 mixed strings:
prose, code, numbers, whitespace, many scripts, emoji, special-token text, long words). Two modes:
  per_string  every string encoded separately (add_special_tokens=False)
  joined      all strings joined by "\\n" and encoded as one document
HF runs Tokenizer.encode in a loop (a single call is single-threaded; RAYON_NUM_THREADS=1 is set anyway).
lcllm runs through the bench_tokenizer binary (tools/bench/bench_tokenizer.cpp). Best of --repeat runs after a
warm-up, for both. Load time is reported too.

  python3 tools/bench_tokenizer.py --bin build/bench_tokenizer [--repeat 5] [--json out.json]
"""
import argparse
import json
import os
import sys
import subprocess
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("RAYON_RS_NUM_CPUS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "..", "shared", "assets", "tokenizers")
NAMES = ["llama2", "llama3", "qwen3", "gemma3"]


def hf_bench(name, texts, joined, repeat):
    from tokenizers import Tokenizer
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(os.path.join(ASSETS, name, "tokenizer.json"))
    load = time.perf_counter() - t0
    if joined:
        texts = ["".join(t + "\n" for t in texts)]
    nbytes = sum(len(t.encode()) for t in texts)
    best = float("inf")
    for r in range(repeat + 1):
        a = time.perf_counter()
        for t in texts:
            tok.encode(t, add_special_tokens=False)
        s = time.perf_counter() - a
        if r:
            best = min(best, s)
    return {"bytes": nbytes, "seconds": best, "mb_per_s": nbytes / 1e6 / best, "load_seconds": load}


def lcllm_bench(binary, name, corpus, joined, repeat):
    cmd = [binary, os.path.join(ASSETS, name), corpus, "--repeat", str(repeat)] + (["--joined"] if joined else [])
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def git_commit():
    import subprocess
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="path to the bench_tokenizer executable")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--names", nargs="*", default=NAMES)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    rows = []
    print(f"{'tokenizer':10} {'mode':10} {'lcllm MB/s':>11} {'HF MB/s':>9} {'ratio':>6} {'lcllm load s':>13} {'HF load s':>10}")
    for name in a.names:
        corpus = os.path.join(ROOT, "tests", "fixtures", "tokenizer", name + ".jsonl")
        texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8")]
        for joined in (False, True):
            hf = hf_bench(name, texts, joined, a.repeat)
            lc = lcllm_bench(a.bin, name, corpus, joined, a.repeat)
            mode = "joined" if joined else "per_string"
            ratio = lc["mb_per_s"] / hf["mb_per_s"]
            rows.append({"tokenizer": name, "mode": mode, "lcllm": lc, "hf": hf, "ratio": ratio})
            print(f"{name:10} {mode:10} {lc['mb_per_s']:11.2f} {hf['mb_per_s']:9.2f} {ratio:6.2f} "
                  f"{lc['load_seconds']:13.2f} {hf['load_seconds']:10.2f}")
    if a.json:
        import tokenizers
        with open(a.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "hf_tokenizers": tokenizers.__version__,
                       "cpu": cpu_model(), "threads": 1, "commit": git_commit(),
                       "command": "python3 tools/bench_tokenizer.py " + " ".join(sys.argv[1:]),
                       "results": rows}, f, indent=1)


if __name__ == "__main__":
    main()
