"""--kv-cache-dtype on serve (E11 item 3): an fp8 cache (emulated exactly on the CPU) serves requests, the startup
log says which cache it holds, and a bad value stops the server with a message naming the flag."""
import json
import subprocess
import time

from conftest import BIN, MODEL, Server


def test_fp8_kv_cache_serves_and_says_so():
    s = Server("--max-num-seqs", "2", "--max-model-len", "256", env={"LCLLM_KV_CACHE_DTYPE": "fp8"})
    try:
        status, _, body = s.request("POST", "/v1/completions",
                                    body={"model": "tiny", "prompt": "The capital of France is", "max_tokens": 5,
                                          "temperature": 0})
        assert status == 200, body
        assert json.loads(body)["usage"]["completion_tokens"] == 5
        deadline = time.time() + 10  # stderr is read by a thread: give it the ready line
        while not any("fp8 emulated" in line for line in s.log) and time.time() < deadline:
            time.sleep(0.05)
        assert any("fp8 emulated" in line for line in s.log), "".join(s.log)
    finally:
        s.stop()


def test_bad_kv_cache_dtype_is_refused_at_startup():
    r = subprocess.run([BIN, "serve", MODEL, "--kv-cache-dtype", "int4"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--kv-cache-dtype" in r.stderr
