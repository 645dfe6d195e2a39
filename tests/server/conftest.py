"""Fixtures for the server tests: a live `lcllm serve` on a free loopback port with the embedded default model
(tiny random Llama + the real Llama 2 tokenizer and chat template).

The binary comes from LCLLM_BIN (CTest passes it), else build/lcllm.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("LCLLM_BIN", os.path.join(ROOT, "build", "lcllm"))
MODEL = os.path.join(ROOT, "models", "default")
API_KEY = "test-key-123"


class Server:
    """One `lcllm serve` process; stderr is collected for debugging and for the listening line."""

    def __init__(self, *extra, api_key=API_KEY, env=None, name="tiny"):
        args = [BIN, "serve", MODEL, "--port", "0", "--threads", "2"]
        if name:
            args += ["--served-model-name", name]
        if api_key:
            args += ["--api-key", api_key]
        args += list(extra)
        self.api_key = api_key
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.log = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                if "ready:" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60) or self.proc.poll() is not None or self.port is None:
            self.stop()
            raise RuntimeError("lcllm serve did not start:\n" + "".join(self.log))
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def request(self, method, path, body=None, headers=None, key=True, timeout=60):
        """(status, headers dict, body bytes) of one request over a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if key and self.api_key:
            h.setdefault("Authorization", f"Bearer {self.api_key}")
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def metrics(self):
        status, _, body = self.request("GET", "/metrics", key=False)
        assert status == 200
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def wait_metric(self, name, want, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            value = self.metrics().get(name)
            if value == want or time.time() > deadline:
                return value
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def server():
    s = Server("--max-num-seqs", "8", "--max-model-len", "512", "--max-waiting", "64")
    yield s
    s.stop()
    assert s.proc.returncode == 0, "".join(s.log)


@pytest.fixture(scope="session")
def client(server):
    import openai
    c = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=60)
    yield c
    c.close()  # idle keep-alive connections would hold the server's shutdown for the keep-alive timeout
