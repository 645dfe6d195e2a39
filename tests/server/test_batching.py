"""Continuous batching as clients see it: many concurrent clients get exactly what they get one by one (greedy),
a client that disconnects mid-stream frees its KV pages at once (seen in /metrics), a full waiting queue answers
429 with Retry-After, and SIGTERM lets a running stream finish."""
import concurrent.futures
import json
import signal
import socket
import time

import openai

from conftest import Server

PROMPTS = [f"Request number {i}: tell me about {w}" for i, w in
           enumerate(["cats", "the sea", "bread", "winter", "a long road home", "numbers", "music", "glass",
                      "rivers", "an old map", "tea", "stars"])]


def run_one(client, i):
    if i % 2:
        r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": PROMPTS[i]}],
                                           max_tokens=12 + i, temperature=0)
        return r.choices[0].message.content, r.usage.completion_tokens
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="tiny", prompt=PROMPTS[i], max_tokens=12 + i, temperature=0, stream=True) if c.choices)
    return text, None


def test_concurrent_greedy_outputs_equal_sequential(client, server):
    sequential = [run_one(client, i) for i in range(len(PROMPTS))]
    before = server.metrics()
    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        concurrent_out = list(pool.map(lambda i: run_one(client, i), range(len(PROMPTS))))
    assert concurrent_out == sequential
    after = server.metrics()
    assert after["lcllm_generation_tokens_total"] - before["lcllm_generation_tokens_total"] == \
        sum(12 + i for i in range(len(PROMPTS)))
    assert after["lcllm_time_to_first_token_seconds_count"] > before["lcllm_time_to_first_token_seconds_count"]
    assert server.wait_metric("lcllm_kv_cache_pages_used", 0) == 0


def open_stream(server, body):
    """A raw streaming request; returns the socket after the first SSE event has arrived."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    payload = json.dumps(body).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + server.api_key.encode() + b"\r\nContent-Length: " +
                 str(len(payload)).encode() + b"\r\n\r\n" + payload)
    got = b""
    while got.count(b"data: ") < 2:
        got += sock.recv(4096)
    return sock, got


def test_disconnect_mid_stream_frees_pages(server):
    sock, first = open_stream(server, {"model": "tiny", "prompt": "Tell a long story", "max_tokens": 480,
                                       "temperature": 0, "stream": True, "ignore_eos": True})
    assert b"200 OK" in first
    assert server.metrics()["lcllm_kv_cache_pages_used"] > 0
    aborted = server.metrics().get('lcllm_request_success_total{finished_reason="abort"}', 0)
    sock.close()
    assert server.wait_metric("lcllm_kv_cache_pages_used", 0, timeout=5) == 0
    assert server.wait_metric("lcllm_num_requests_running", 0) == 0
    assert server.metrics()['lcllm_request_success_total{finished_reason="abort"}'] == aborted + 1
    status, _, _ = server.request("GET", "/v1/models")
    assert status == 200


def test_disconnect_before_a_non_streamed_answer_frees_pages(server):
    """E11 item 5: a client that leaves while its (non-streamed) completion runs gets its request cancelled."""
    body = json.dumps({"model": "tiny", "prompt": "Tell a long story", "max_tokens": 480, "temperature": 0,
                       "ignore_eos": True}).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + server.api_key.encode() +
                 b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    aborted = server.metrics().get('lcllm_request_success_total{finished_reason="abort"}', 0)
    deadline = time.time() + 5
    while server.metrics().get("lcllm_kv_cache_pages_used", 0) == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert server.metrics()["lcllm_kv_cache_pages_used"] > 0
    sock.close()
    assert server.wait_metric("lcllm_kv_cache_pages_used", 0, timeout=5) == 0
    assert server.wait_metric("lcllm_num_requests_running", 0) == 0
    assert server.metrics()['lcllm_request_success_total{finished_reason="abort"}'] == aborted + 1


def test_n_choices_prefill_the_prompt_once_and_equal_single_requests(server):
    """E11 item 1: n > 1 forks the prompt's pages instead of prefilling it n times; choice i samples with seed + i,
    so it equals a single request with that seed."""
    prompt = "Once upon a time there was a little robot who"
    before = server.metrics()["lcllm_prompt_tokens_total"]
    status, _, data = server.request("POST", "/v1/completions", body={"model": "tiny", "prompt": prompt, "n": 3,
                                                                      "max_tokens": 6, "temperature": 0.9, "seed": 11})
    assert status == 200, data
    choices = sorted(json.loads(data)["choices"], key=lambda c: c["index"])
    n_prompt = json.loads(data)["usage"]["prompt_tokens"]
    assert server.metrics()["lcllm_prompt_tokens_total"] - before == n_prompt  # once, not 3 times
    for c in choices:
        status, _, one = server.request("POST", "/v1/completions",
                                        body={"model": "tiny", "prompt": prompt, "max_tokens": 6, "temperature": 0.9,
                                              "seed": 11 + c["index"]})
        assert json.loads(one)["choices"][0]["text"] == c["text"]


def test_full_queue_answers_429_with_retry_after():
    s = Server("--max-num-seqs", "1", "--max-waiting", "1", "--max-model-len", "600")
    try:
        long_body = {"model": "tiny", "prompt": "Go on", "max_tokens": 500, "temperature": 0, "stream": True,
                     "ignore_eos": True}
        running, _ = open_stream(s, long_body)       # takes the only batch slot
        s.wait_metric("lcllm_num_requests_running", 1)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(s.request, "POST", "/v1/completions",
                                  {"model": "tiny", "prompt": "Hi", "max_tokens": 2})
            assert s.wait_metric("lcllm_num_requests_waiting", 1) == 1
            status, headers, body = s.request("POST", "/v1/completions",
                                              {"model": "tiny", "prompt": "Hi", "max_tokens": 2})
            assert status == 429, body
            assert int(headers["retry-after"]) >= 1
            assert json.loads(body)["error"]["type"] == "rate_limit_error"
            running.close()                          # the slot frees, the waiting request runs
            status, _, _ = waiting.result(timeout=30)
            assert status == 200
    finally:
        s.stop()
    assert s.proc.returncode == 0


def test_sigterm_finishes_running_streams_then_exits():
    s = Server("--max-num-seqs", "2")
    client = openai.OpenAI(base_url=s.base_url, api_key=s.api_key, max_retries=0)
    try:
        stream = client.completions.create(model="tiny", prompt="Count", max_tokens=1000, temperature=0, stream=True,
                                           extra_body={"ignore_eos": True})
        it = iter(stream)
        next(it)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)
        status, _, _ = s.request("GET", "/health", key=False)
        assert status == 503
        assert s.metrics()["lcllm_num_requests_running"] == 1  # still generating after the signal
        status, _, body = s.request("POST", "/v1/completions", {"model": "tiny", "prompt": "Hi", "max_tokens": 2})
        assert status == 503, body  # no new work while draining
        rest = list(it)  # the stream runs to its end despite the signal
        assert rest[-1].choices[0].finish_reason == "length"
        assert s.proc.wait(30) == 0
        assert any("stopped" in line for line in s.log)
    finally:
        client.close()
        s.stop()


def test_sigterm_cancels_streams_that_outlast_the_shutdown_timeout():
    s = Server("--max-num-seqs", "2", "--shutdown-timeout", "0")
    client = openai.OpenAI(base_url=s.base_url, api_key=s.api_key, max_retries=0)
    try:
        stream = client.completions.create(model="tiny", prompt="Count", max_tokens=3000, temperature=0, stream=True,
                                           extra_body={"ignore_eos": True})
        it = iter(stream)
        next(it)
        s.proc.send_signal(signal.SIGTERM)
        rest = list(it)  # ends cleanly (finish chunk, [DONE]) instead of breaking off
        assert rest[-1].choices[0].finish_reason == "abort"
        assert sum(1 for c in rest if c.choices and c.choices[0].text) < 2999
        assert s.proc.wait(30) == 0
    finally:
        client.close()
        s.stop()


def test_health_is_503_while_loading_then_200():
    """The listener opens before the tokenizer and weights load (about 0.4 s for the default model)."""
    import http.client
    import re
    import subprocess
    from conftest import BIN, MODEL
    p = subprocess.Popen([BIN, "serve", MODEL, "--port", "0", "--threads", "2"], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in p.stderr:
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "no listening line"

        def get(path, method="GET", body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request(method, path, body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            out = r.status, json.loads(r.read())
            c.close()
            return out
        assert get("/health") == (503, {"status": "loading"})
        status, body = get("/v1/completions", "POST", json.dumps({"prompt": "Hi", "max_tokens": 1}))
        assert status == 503 and "loading" in body["error"]["message"]
        deadline = time.time() + 60
        while get("/health")[0] != 200:
            assert time.time() < deadline
            time.sleep(0.02)
        assert get("/health") == (200, {"status": "ok"})
    finally:
        p.terminate()
        p.wait(30)
