#!/usr/bin/env python3
"""Time to first token of three requests sharing a long prefix, with prefix caching on and off (E11 item 2).

  build/venv-test/bin/python tools/bench/prefix_cache_ttft.py [MODEL] [SENTENCES] [-- extra serve flags]

Starts `lcllm serve` (LCLLM_BIN, default build/lcllm) twice on MODEL (default models/default), sends
prefix + "first/second/third question" with max_tokens 1, and prints each request's wall time and the server's
prefix-cache counters as JSON lines.
"""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
from conftest import Server  # noqa: E402


def main():
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[:args.index("--")] if "--" in args else args
    model = args[0] if args else os.path.join(ROOT, "models", "default")
    sentences = int(args[1]) if len(args) > 1 else 300
    doc = " ".join(["The quick brown fox jumps over the lazy dog."] * sentences)
    for caching in (True, False):
        flags = ["--max-model-len", "8192", "--ctx-size", "32768", *extra]
        if not caching:
            flags.append("--no-prefix-caching")
        import conftest
        conftest.MODEL = model
        s = Server(*flags, name=None)
        try:
            times = []
            for q in ("first question", "second question", "third question"):
                t0 = time.time()
                status, _, data = s.request("POST", "/v1/completions",
                                            body={"prompt": doc + " " + q, "max_tokens": 1, "temperature": 0})
                assert status == 200, data
                times.append(round(time.time() - t0, 4))
            m = s.metrics()
            print(json.dumps({"prefix_caching": caching, "model": model, "ttft_s": times,
                              "prompt_tokens_prefilled": m["lcllm_prompt_tokens_total"],
                              "prefix_cache_hit_tokens": m["lcllm_prefix_cache_hits_total"]}))
        finally:
            s.stop()


if __name__ == "__main__":
    main()
