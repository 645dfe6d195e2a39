#!/usr/bin/env python3
"""Time to first token of requests that share a long prefix, with prefix caching on and off (E11 item 2 target:
a second request sharing a 64k-token prefix starts in <= 5% of the first one's time).

  python3 tools/bench/prefix_cache_ttft.py --model MODEL --prefix-tokens 65536 \\
      --server-args "--device cuda --max-model-len 66000 --ctx-size 140000" --json OUT.json

Starts `lcllm serve` (--server-cmd) once with prefix caching and once without; each time sends the same
document followed by three different questions, one after another (streaming, max_tokens 1), and records each
request's time to first token and the server's prefix-cache counters. Standard library only.
"""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_test import ROOT, ServerProcess, machine, metrics, one_request, prompt_of  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server-cmd", default=os.path.join(ROOT, "build", "lcllm") + " serve",
                    help="command that starts the server; MODEL --host 127.0.0.1 --port 0 are appended")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    ap.add_argument("--prefix-tokens", type=int, default=3000, help="approximate length of the shared document")
    ap.add_argument("--server-args", default="--max-model-len 4096 --ctx-size 16384", help="further server flags")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per request")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    shape = argparse.Namespace(shared_prefix_tokens=a.prefix_tokens, prompt_tokens=0)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True).stdout.strip(),
               "command": " ".join(shlex.quote(x) for x in sys.argv), "machine": machine(),
               "prefix_tokens_requested": a.prefix_tokens, "runs": []}
    ok = True
    for caching in (True, False):
        server = ServerProcess(a.server_cmd, a.model, a.server_args + ("" if caching else " --no-prefix-caching"))
        run = {"prefix_caching": caching, "server": server.args, "requests": []}
        try:
            for i in range(3):
                body = {"prompt": prompt_of(shape, i), "max_tokens": 1, "temperature": 0, "stream": True,
                        "stream_options": {"include_usage": True}}
                r = one_request(server.port, body, a.timeout)
                if "error" in r:
                    ok = False
                    run["requests"].append({"error": r["error"]})
                    continue
                run["requests"].append({"ttft_s": r["ttft"], "e2e_s": r["e2e"], "prompt_tokens": r["prompt_tokens"]})
            m = metrics(server.port)
            run["prompt_tokens_prefilled"] = m.get("lcllm_prompt_tokens_total")
            run["prefix_cache_hit_tokens"] = m.get("lcllm_prefix_cache_hits_total")
            run["prefix_cache_query_tokens"] = m.get("lcllm_prefix_cache_queries_total")
        finally:
            server.stop()
        t = [q.get("ttft_s") for q in run["requests"]]
        if all(x is not None for x in t):
            run["second_over_first"] = t[1] / t[0]
        print(json.dumps(run), flush=True)
        results["runs"].append(run)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
