#!/usr/bin/env python3
"""Load test for `lcllm serve`: starts the server on a free loopback port, drives it with streaming completion
requests at increasing concurrency, and reports time to first token, inter-token latency, end-to-end latency
(p50/p90/p99) and output throughput per level, requests lost, and the server's resident memory before, at the
peak and after (it must come back to the baseline once the load is gone).

With --shared-prefix-tokens N every request is one shared N-token document (a long system prompt) plus a
question of its own, the way long-context clients send them; --prefix-caching on|off|both runs the server with
prefix caching on, off (--no-prefix-caching) or once each, and records the server's prefix-cache counters (E11).

Loopback only and bounded: a fixed number of requests per level, a timeout per request, and the server is stopped
at the end. Standard library only, so it runs on any machine with python3.

  python3 tools/bench/load_test.py --json bench/results/server_load_cpu.json               # CPU, CI size
  python3 tools/bench/load_test.py --server-cmd "build/lcllm serve --device cuda" \\
      --model /models/Llama-3.1-8B-Instruct --concurrency 1,4,16,64 --requests 256 \\
      --prompt-tokens 1024 --max-tokens 256 --json bench/results/server_load_h100.json   # GPU, full size
  python3 tools/bench/load_test.py --model MODEL --shared-prefix-tokens 16384 --prefix-caching both \\
      --concurrency 1,8,32 --requests 8 --max-tokens 64 --server-args "--max-model-len 17000 ..."  # E11 shared prefix
"""
import argparse
import concurrent.futures
import datetime
import http.client
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def percentiles(values):
    if not values:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    v = sorted(values)

    def q(p):  # nearest rank
        return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]
    return {"p50": q(50), "p90": q(90), "p99": q(99), "mean": statistics.fmean(v)}


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class ServerProcess:
    def __init__(self, cmd, model, extra):
        args = shlex.split(cmd) + [model, "--host", "127.0.0.1", "--port", "0"] + shlex.split(extra)
        self.args = args
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = None
        self.log = []
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                if "ready:" in line:
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(600) or self.proc.poll() is not None or not self.port:
            self.stop()
            sys.exit("server did not start:\n" + "".join(self.log))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def metrics(port):
    """The server's /metrics as {name: value} (unlabelled samples only)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#") and "{" not in parts[0]:
            out[parts[0]] = float(parts[1])
    return out


def one_request(port, body, timeout):
    """Streams one completion; returns a dict of timings or an error."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/v1/completions", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return {"error": f"HTTP {r.status}: {r.read()[:200]!r}"}
        token_times, usage, done, buf = [], None, False, b""
        while not done:
            chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = event.decode("utf-8", "replace").removeprefix("data: ")
                if data == "[DONE]":
                    done = True
                    break
                j = json.loads(data)
                if j.get("usage"):
                    usage = j["usage"]
                for c in j.get("choices", []):
                    if c.get("text"):
                        token_times.append(time.perf_counter())
        t1 = time.perf_counter()
        if not done or not usage:
            return {"error": "stream ended without usage and [DONE]"}
        itl = [b - a for a, b in zip(token_times, token_times[1:])]
        return {"ttft": (token_times[0] - t0) if token_times else None, "itl": itl, "e2e": t1 - t0,
                "tokens": usage["completion_tokens"], "prompt_tokens": usage["prompt_tokens"]}
    except Exception as e:  # a lost request is counted, not fatal
        return {"error": repr(e)}
    finally:
        conn.close()


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = None
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server-cmd", default=os.path.join(ROOT, "build", "lcllm") + " serve",
                    help="command that starts the server; MODEL --host 127.0.0.1 --port 0 are appended")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    ap.add_argument("--server-args", default="--max-num-seqs 16 --max-model-len 1024",
                    help="further server flags")
    ap.add_argument("--concurrency", default="1,2,4,8,16", help="comma-separated client counts")
    ap.add_argument("--requests", type=int, default=32,
                    help="requests per concurrency level (at least the level's client count)")
    ap.add_argument("--prompt-tokens", type=int, default=128, help="approximate prompt length")
    ap.add_argument("--max-tokens", type=int, default=64, help="tokens generated per request (ignore_eos)")
    ap.add_argument("--shared-prefix-tokens", type=int, default=0,
                    help="approximate length of a document every request starts with (0: one fixed prompt)")
    ap.add_argument("--prefix-caching", choices=["on", "off", "both"], default="on",
                    help="serve with prefix caching on, off, or run the levels once with each")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    if a.requests * len(levels) > 100000:
        sys.exit("refusing more than 100000 requests in one run")

    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                        text=True).stdout.strip(),
               "command": " ".join(shlex.quote(x) for x in sys.argv), "machine": machine(),
               "prompt_tokens_requested": a.prompt_tokens, "shared_prefix_tokens": a.shared_prefix_tokens,
               "max_tokens": a.max_tokens, "runs": []}
    modes = {"on": [True], "off": [False], "both": [True, False]}[a.prefix_caching]
    ok = True
    for caching in modes:
        run = run_levels(a, levels, caching)
        results["runs"].append(run)
        ok = ok and run.get("lost_total", 1) == 0 and run["memory"]["back_to_baseline"] and run["server_exit_code"] == 0
    if len(results["runs"]) == 1:  # the layout of earlier single-run results
        results.update(results.pop("runs")[0])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    sys.exit(0 if ok else 1)


def prompt_of(a, i):
    """Request i's prompt: one fixed prompt, or the shared document plus a question of its own."""
    if a.shared_prefix_tokens <= 0:
        # About prompt_tokens tokens: " word" is one token in Llama-style vocabularies.
        return "Summarise:" + " word" * max(1, a.prompt_tokens - 3)
    # A document of varied sentences (one repeated word would be unlike any real prefix), then request i's question.
    words = ["the", "river", "runs", "past", "old", "mills", "and", "green", "fields", "where", "farmers", "grow",
             "wheat", "barley", "oats", "under", "a", "wide", "sky"]
    doc = " ".join(words[(k * 7 + k // len(words)) % len(words)] for k in range(a.shared_prefix_tokens))
    return doc + f"\n\nQuestion {i}: what does passage {i % 97} say about the fields?"


def run_levels(a, levels, caching):
    extra = a.server_args + ("" if caching else " --no-prefix-caching")
    server = ServerProcess(a.server_cmd, a.model, extra)
    run = {"prefix_caching": caching, "server": server.args, "levels": []}

    def body(i):
        return {"prompt": prompt_of(a, i), "max_tokens": a.max_tokens, "temperature": 0, "stream": True,
                "ignore_eos": True, "stream_options": {"include_usage": True}}
    try:
        one_request(server.port, body(-1), a.timeout)  # warm-up (page-in of the weights, allocator pools)
        time.sleep(0.5)
        rss_baseline = rss_bytes(server.proc.pid)
        rss_peak = rss_baseline
        lost_total = 0
        next_id = 0
        for c in levels:
            n = max(a.requests, c)
            m0 = metrics(server.port)
            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(c) as pool:
                futures = [pool.submit(one_request, server.port, body(next_id + i), a.timeout) for i in range(n)]
                next_id += n
                while not all(f.done() for f in futures):
                    rss_peak = max(rss_peak, rss_bytes(server.proc.pid))
                    time.sleep(0.05)
                out = [f.result() for f in futures]
            wall = time.perf_counter() - t0
            m1 = metrics(server.port)
            ok = [o for o in out if "error" not in o]
            lost = len(out) - len(ok)
            lost_total += lost
            tokens = sum(o["tokens"] for o in ok)
            queried = m1.get("lcllm_prefix_cache_queries_total", 0) - m0.get("lcllm_prefix_cache_queries_total", 0)
            hits = m1.get("lcllm_prefix_cache_hits_total", 0) - m0.get("lcllm_prefix_cache_hits_total", 0)
            level = {"concurrency": c, "requests": len(out), "lost": lost,
                     "errors": sorted({o["error"] for o in out if "error" in o})[:5],
                     "prompt_tokens": statistics.fmean(o["prompt_tokens"] for o in ok) if ok else None,
                     "wall_s": wall, "output_tokens_per_s": tokens / wall,
                     "requests_per_s": len(ok) / wall,
                     "prefix_hit_rate": hits / queried if queried else None,
                     "prompt_tokens_prefilled": m1.get("lcllm_prompt_tokens_total", 0) -
                                                m0.get("lcllm_prompt_tokens_total", 0),
                     "ttft_s": percentiles([o["ttft"] for o in ok if o["ttft"] is not None]),
                     "itl_s": percentiles([x for o in ok for x in o["itl"]]),
                     "e2e_s": percentiles([o["e2e"] for o in ok])}
            run["levels"].append(level)
            print(f"prefix caching {'on ' if caching else 'off'} concurrency {c:3d}: "
                  f"{level['output_tokens_per_s']:8.1f} tok/s, "
                  f"TTFT p50/p90/p99 {level['ttft_s']['p50']*1e3:.1f}/{level['ttft_s']['p90']*1e3:.1f}/"
                  f"{level['ttft_s']['p99']*1e3:.1f} ms, ITL p50/p90/p99 {level['itl_s']['p50']*1e3:.2f}/"
                  f"{level['itl_s']['p90']*1e3:.2f}/{level['itl_s']['p99']*1e3:.2f} ms, lost {lost}", flush=True)
        time.sleep(1.0)
        rss_after = rss_bytes(server.proc.pid)
        run["memory"] = {"rss_baseline_bytes": rss_baseline, "rss_peak_bytes": rss_peak,
                         "rss_after_bytes": rss_after,
                         "back_to_baseline": rss_after <= rss_baseline * 1.05 + (8 << 20)}
        run["lost_total"] = lost_total
        print(f"RSS baseline {rss_baseline / 2**20:.1f} MiB, peak {rss_peak / 2**20:.1f} MiB, "
              f"after {rss_after / 2**20:.1f} MiB; lost {lost_total}")
    finally:
        server.stop()
    run["server_exit_code"] = server.proc.returncode
    return run


if __name__ == "__main__":
    main()
