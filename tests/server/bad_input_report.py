#!/usr/bin/env python3
"""Runs the bad-input matrix of test_bad_input.py (plus the raw-socket cases) against a fresh `lcllm serve` and
writes a Markdown table of every input and what came back: docs/SERVER_BAD_INPUT.md (issue 7's closing note).

  build/venv-test/bin/python tests/server/bad_input_report.py [OUT.md]
"""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ROOT, Server  # noqa: E402
from test_bad_input import (COMPLETIONS, MATRIX, REFUSED_BEFORE_THE_BODY, answer_without_body,  # noqa: E402
                            completion, raw_exchange)
from test_http_front_end import FRAMING, read_response  # noqa: E402


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")[:160]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "docs", "SERVER_BAD_INPUT.md")
    s = Server("--max-num-seqs", "8", "--max-model-len", "512", "--read-timeout", "2")
    rows = []
    try:
        def still_serving():
            return s.request("POST", COMPLETIONS, body=completion(),
                             headers={"Content-Type": "application/json"})[0] == 200

        for name, path, body, _, _ in MATRIX:
            status, _, data = s.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            msg = json.loads(data)["error"]["message"]
            rows.append((name, f"POST {path}", status, msg, still_serving()))
        status, _, data = s.request("POST", COMPLETIONS, body=completion(prompt="x" * (9 << 20)),
                                    headers={"Content-Type": "application/json"})
        rows.append(("9 MiB body", "POST /v1/completions", status, json.loads(data)["error"]["message"],
                     still_serving()))
        def raw(data):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            try:
                c.sendall(data)
                status, _, body = read_response(c)
                return status, json.loads(body)["error"]["message"] if body else "connection closed"
            except OSError as e:
                return None, f"connection closed ({e.__class__.__name__})"
            finally:
                c.close()

        status, msg = raw(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 +
                          b"\r\nContent-Length: 2\r\n\r\n{}")
        rows.append(("100 KB header line", "POST /v1/completions", status, msg, still_serving()))
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
        status, msg = raw(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        rows.append(("5000 small header lines, no key", "GET /v1/models", status, msg, still_serving()))
        for name, data, _ in FRAMING:
            status, msg = raw(data)
            rows.append((f"framing: {name}", data.split(b" ")[0].decode() + " " + data.split(b" ")[1][:40].decode(),
                         status, msg, still_serving()))
        # Slowloris: 100 connections sending a byte every 0.5 s; /health is timed meanwhile; each gets 408 at
        # --read-timeout (2 s here) however it paces its bytes.
        slow = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(100)]
        t0 = time.time()
        health = []
        cut = [None] * len(slow)
        request = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        for step in range(12):
            for i, c in enumerate(slow):
                if cut[i] is None:
                    try:
                        c.sendall(request[step:step + 1])
                    except OSError:
                        cut[i] = time.time() - t0
            h0 = time.time()
            health.append(s.request("GET", "/health", key=False)[0] == 200 and time.time() - h0)
            time.sleep(0.5)
            for i, c in enumerate(slow):
                c.setblocking(False)
                try:
                    if cut[i] is None and c.recv(4096) is not None:
                        cut[i] = time.time() - t0
                except BlockingIOError:
                    pass
                except OSError:
                    cut[i] = time.time() - t0
        done = [t for t in cut if t is not None]
        rows.append(("100 clients trickling a byte every 0.5 s", "POST /v1/completions",
                     "408" if len(done) == len(slow) else f"{len(done)}/100 cut",
                     f"all cut by {max(done or [0]):.1f} s (--read-timeout 2); /health meanwhile: "
                     f"{'200 in at most %.3f s' % max(health) if all(health) else 'FAILED'}", still_serving()))
        for c in slow:
            c.close()
        for name, headers, path, _ in REFUSED_BEFORE_THE_BODY:
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {s.api_key}\r\n"
                    "Content-Type: application/json\r\n").encode() + headers + b"\r\n"
            elapsed, line, hdrs = answer_without_body(s, head)
            rows.append((f"{name}, 1 MB announced and never sent", f"POST {path}", line,
                         f"answered in {elapsed:.2f} s without reading the body; Connection: "
                         f"{hdrs.get('connection', '-')}", still_serving()))
        for auth in [None, "Bearer wrong", "Basic dGVzdA=="]:
            for method, path in [("GET", "/v1/models"), ("POST", "/v1/completions"),
                                 ("POST", "/v1/chat/completions"), ("GET", "/v1/unknown")]:
                h = {"Authorization": auth} if auth else {}
                status, _, data = s.request(method, path, body=completion() if method == "POST" else None,
                                            headers=h, key=False)
                rows.append((f"API key {auth or 'missing'}", f"{method} {path}", status,
                             json.loads(data)["error"]["message"], still_serving()))
    finally:
        s.stop()
    with open(out_path, "w") as f:
        f.write("# Bad input tried against `lcllm serve` and what came back\n\n")
        f.write("Generated by `tests/server/bad_input_report.py` (the matrix of `tests/server/test_bad_input.py`, "
                "which CI runs) on `models/default` with `--max-model-len 512 --read-timeout 2 --api-key ...`. Every error body has "
                "OpenAI's shape `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`; \"serving\" is a "
                "normal request answered 200 right after. The slow-client rows use `--read-timeout 2`.\n\n")
        f.write("| input | route | status | message | serving after |\n|---|---|---|---|---|\n")
        for name, route, status, msg, ok in rows:
            f.write(f"| {cell(name)} | {route} | {status} | {cell(msg)} | {'yes' if ok else 'NO'} |\n")
    print(f"wrote {out_path}: {len(rows)} inputs, server exit code {s.proc.returncode}")


if __name__ == "__main__":
    main()
