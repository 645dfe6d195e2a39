"""The bad-input matrix of issue 7: every malformed, hostile or absurd request gets a 4xx in OpenAI's error shape
(never a 5xx), and the server keeps serving afterwards. Raw http.client/sockets so nothing is cleaned up by a
client library on the way."""
import json
import socket
import time

import pytest

GOOD_CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
GOOD_COMPLETION = {"model": "tiny", "prompt": "Hi", "max_tokens": 2}


def chat(**changes):
    body = dict(GOOD_CHAT)
    for k, v in changes.items():
        if v is DROP:
            body.pop(k)
        else:
            body[k] = v
    return json.dumps(body)


def completion(**changes):
    body = dict(GOOD_COMPLETION)
    body.update(changes)
    return json.dumps(body)


DROP = object()
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"

# (name, path, raw body, expected status, text the error message must contain)
MATRIX = [
    ("malformed JSON", CHAT, '{"model": "tiny", "messages": [', 400, "not valid JSON"),
    ("truncated JSON", COMPLETIONS, completion()[:-5], 400, "not valid JSON"),
    ("empty body", CHAT, "", 400, "not valid JSON"),
    ("not an object", CHAT, "[1, 2, 3]", 400, "JSON object"),
    ("non-UTF-8 JSON", COMPLETIONS, b'{"prompt": "\xff\xfe\xfd", "max_tokens": 2}', 400, "UTF-8"),
    ("deeply nested JSON", CHAT, '{"x": ' + "[" * 100000 + "]" * 100000 + "}", 400, "deeper than"),
    ("NaN literal", COMPLETIONS, '{"prompt": "Hi", "temperature": NaN}', 400, "not valid JSON"),
    ("messages missing", CHAT, chat(messages=DROP), 400, "messages is required"),
    ("messages empty", CHAT, chat(messages=[]), 400, "non-empty array"),
    ("messages wrong type", CHAT, chat(messages="hello"), 400, "non-empty array"),
    ("message not an object", CHAT, chat(messages=["hello"]), 400, "must be an object"),
    ("unknown role", CHAT, chat(messages=[{"role": "wizard", "content": "Hi"}]), 400, "role"),
    ("role wrong type", CHAT, chat(messages=[{"role": 5, "content": "Hi"}]), 400, "role"),
    ("content null", CHAT, chat(messages=[{"role": "user", "content": None}]), 400, "content is required"),
    ("content missing", CHAT, chat(messages=[{"role": "user"}]), 400, "content is required"),
    ("content array of numbers", CHAT, chat(messages=[{"role": "user", "content": [1, 2]}]), 400, "must be an object"),
    ("content image part", CHAT, chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), 400,
     "only text"),
    ("content empty array", CHAT, chat(messages=[{"role": "user", "content": []}]), 400, "non-empty array"),
    ("content number", CHAT, chat(messages=[{"role": "user", "content": 42}]), 400, "string or a non-empty array"),
    ("prompt missing", COMPLETIONS, json.dumps({"max_tokens": 2}), 400, "prompt is required"),
    ("prompt wrong type", COMPLETIONS, completion(prompt={"a": 1}), 400, "prompt must be"),
    ("prompt token id out of range", COMPLETIONS, completion(prompt=[1, 99999999]), 400, "token id"),
    ("prompt negative token id", COMPLETIONS, completion(prompt=[-1]), 400, "token id"),
    ("several prompts", COMPLETIONS, completion(prompt=["a", "b"]), 400, "one prompt per request"),
    ("max_tokens negative", COMPLETIONS, completion(max_tokens=-5), 400, "max_tokens"),
    ("max_tokens zero", COMPLETIONS, completion(max_tokens=0), 400, "max_tokens"),
    ("max_tokens absurd", COMPLETIONS, completion(max_tokens=10**15), 400, "maximum context length"),
    ("max_tokens beyond int64", COMPLETIONS, '{"prompt": "Hi", "max_tokens": 99999999999999999999}', 400,
     "max_tokens"),
    ("max_tokens float", COMPLETIONS, completion(max_tokens=2.5), 400, "integer"),
    ("max_tokens string", COMPLETIONS, completion(max_tokens="10"), 400, "integer"),
    ("max_completion_tokens negative", CHAT, chat(max_completion_tokens=-1), 400, "max_completion_tokens"),
    ("n zero", COMPLETIONS, completion(n=0), 400, "n must be"),
    ("n huge", COMPLETIONS, completion(n=100000), 400, "n must be"),
    ("temperature negative", COMPLETIONS, completion(temperature=-1), 400, "temperature"),
    ("temperature huge", COMPLETIONS, completion(temperature=1e308), 400, "temperature"),
    ("temperature overflow to inf", COMPLETIONS, '{"prompt": "Hi", "temperature": 1e999}', 400, ""),
    ("temperature string", COMPLETIONS, completion(temperature="hot"), 400, "temperature"),
    ("top_p zero", COMPLETIONS, completion(top_p=0), 400, "top_p"),
    ("top_p above one", COMPLETIONS, completion(top_p=1.5), 400, "top_p"),
    ("top_k negative", COMPLETIONS, completion(top_k=-7), 400, "top_k"),
    ("min_p above one", COMPLETIONS, completion(min_p=2), 400, "min_p"),
    ("frequency_penalty out of range", COMPLETIONS, completion(frequency_penalty=3), 400, "frequency_penalty"),
    ("presence_penalty out of range", COMPLETIONS, completion(presence_penalty=-2.5), 400, "presence_penalty"),
    ("repetition_penalty zero", COMPLETIONS, completion(repetition_penalty=0), 400, "repetition_penalty"),
    ("seed not an integer", COMPLETIONS, completion(seed="x"), 400, "seed"),
    ("top_logprobs too large", CHAT, chat(logprobs=True, top_logprobs=1000), 400, "top_logprobs"),
    ("top_logprobs without logprobs", CHAT, chat(top_logprobs=2), 400, "logprobs: true"),
    ("logprobs too large (completions)", COMPLETIONS, completion(logprobs=21), 400, "logprobs"),
    ("logprobs wrong type (chat)", CHAT, chat(logprobs=5), 400, "logprobs"),
    ("too many stop strings", COMPLETIONS, completion(stop=[str(i) for i in range(100)]), 400, "stop"),
    ("huge stop string", COMPLETIONS, completion(stop="x" * 100000), 400, "stop"),
    ("stop wrong type", COMPLETIONS, completion(stop=5), 400, "stop"),
    ("stop list with a number", COMPLETIONS, completion(stop=["a", 1]), 400, "stop"),
    ("stream wrong type", COMPLETIONS, completion(stream="yes"), 400, "stream"),
    ("stream_options without stream", COMPLETIONS, completion(stream_options={"include_usage": True}), 400,
     "stream_options"),
    ("tools", CHAT, chat(tools=[{"type": "function", "function": {"name": "f"}}]), 400, "not supported"),
    ("logit_bias", COMPLETIONS, completion(logit_bias={"5": 10}), 400, "logit_bias"),
    ("response_format json", CHAT, chat(response_format={"type": "json_object"}), 400, "response_format"),
    ("unknown policy", COMPLETIONS, completion(attention_policy="../../etc/passwd"), 400, "attention_policy"),
    ("model wrong type", COMPLETIONS, completion(model=7), 400, "model"),
    ("unknown model", COMPLETIONS, completion(model="gpt-9"), 404, "does not exist"),
    ("prompt over the context", COMPLETIONS, completion(prompt="hello " * 700), 400, "maximum context length"),
    ("prompt + max_tokens over the context", COMPLETIONS, completion(prompt="hello " * 300, max_tokens=300), 400,
     "maximum context length"),
    ("unknown route", "/v1/engines", completion(), 404, "no such route"),
]


def check_error(status, body, want_status, want_text):
    assert status == want_status, body[:300]
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert want_text in err["message"], err["message"]


@pytest.mark.parametrize("name,path,body,want_status,want_text", MATRIX, ids=[m[0] for m in MATRIX])
def test_bad_request_gets_4xx_and_server_keeps_serving(server, name, path, body, want_status, want_text):
    status, _, data = server.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    check_error(status, data, want_status, want_text)
    status, _, data = server.request("POST", COMPLETIONS, body=completion(),
                                     headers={"Content-Type": "application/json"})
    assert status == 200, data


def test_no_validation_error_is_a_5xx(server):
    codes = {k: v for k, v in server.metrics().items() if k.startswith("lcllm_http_responses_total")}
    assert not [k for k in codes if '"5' in k], codes


def test_oversized_body_is_413(server):
    body = completion(prompt="x" * (9 << 20))
    status, _, data = server.request("POST", COMPLETIONS, body=body, headers={"Content-Type": "application/json"})
    check_error(status, data, 413, "too large")
    assert server.request("GET", "/v1/models")[0] == 200


def raw_exchange(server, data, timeout=10):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        sock.sendall(data)
        out = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if length and len(rest) >= int(length[0].split(b":")[1]):
                    break
        return out
    finally:
        sock.close()


def test_huge_headers_are_refused(server):
    big = b"X-Big: " + b"a" * 100000 + b"\r\n"
    out = raw_exchange(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + big + b"Content-Length: 2\r\n\r\n{}")
    assert out.startswith(b"HTTP/1.1 4"), out[:200]
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    out = raw_exchange(server, b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert out == b"" or out.startswith(b"HTTP/1.1 4"), out[:200]
    assert server.request("GET", "/v1/models")[0] == 200


def test_slow_clients_do_not_block_others(server):
    """Slowloris: connections that send half a request and stall must not starve real clients."""
    slow = []
    for _ in range(24):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"pro")
        slow.append(s)
    try:
        start = time.time()
        status, _, data = server.request("POST", COMPLETIONS, body=completion(),
                                         headers={"Content-Type": "application/json"})
        assert status == 200, data
        assert time.time() - start < 5
    finally:
        for s in slow:
            s.close()


@pytest.mark.parametrize("method,path", [("GET", "/v1/models"), ("GET", "/v1/models/tiny"),
                                         ("POST", "/v1/completions"), ("POST", "/v1/chat/completions"),
                                         ("GET", "/v1/no-such-route")])
@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer test-key-1234", "Basic dGVzdC1rZXktMTIz",
                                  "test-key-123", "Bearer "])
def test_wrong_or_missing_api_key_is_401_on_every_protected_route(server, method, path, auth):
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    body = completion() if path == "/v1/completions" else json.dumps(GOOD_CHAT) if method == "POST" else None
    status, _, data = server.request(method, path, body=body, headers=headers, key=False)
    check_error(status, data, 401, "API key")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(server, scheme):
    # RFC 6750 section 2.1 / RFC 9110 section 11.1: auth-scheme names are case-insensitive.
    status, _, _ = server.request("GET", "/v1/models", headers={"Authorization": f"{scheme} {server.api_key}"},
                                  key=False)
    assert status == 200


def test_an_unknown_model_is_not_echoed_back_in_full(server):
    model = "m" * 100_000
    status, _, data = server.request("POST", "/v1/completions",
                                     body=json.dumps({"model": model, "prompt": "hi", "max_tokens": 1}))
    check_error(status, data, 404, "does not exist")
    assert len(data) < 2000
    status, _, data = server.request("GET", "/v1/models/" + "x" * 5000)
    check_error(status, data, 404, "does not exist")
    assert len(data) < 2000


def test_health_and_metrics_need_no_key(server):
    assert server.request("GET", "/health", key=False)[0] == 200
    assert server.request("GET", "/metrics", key=False)[0] == 200


def answer_without_body(server, head, wait=3.0):
    """Sends request headers (and no body); (seconds until the response head arrived, its status line, its headers)."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=wait)
    try:
        s.sendall(head)
        t0 = time.time()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.time() - t0
        lines = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        return elapsed, lines[0], headers
    finally:
        s.close()


REFUSED_BEFORE_THE_BODY = [
    # (name, extra headers, path, status): each request announces a 1 MB body it never sends; the answer must come
    # at once (the body is not awaited, read, inflated or buffered) and say that the connection closes.
    ("gzip body", b"Content-Encoding: gzip\r\nContent-Length: 1000000\r\n", "/v1/completions", 415),
    ("deflate body", b"Content-Encoding: deflate\r\nContent-Length: 1000000\r\n", "/v1/completions", 415),
    ("br body", b"Content-Encoding: br\r\nContent-Length: 1000000\r\n", "/v1/chat/completions", 415),
    ("chunked body", b"Transfer-Encoding: chunked\r\n", "/v1/completions", 411),
    ("two different Content-Length", b"Content-Length: 10\r\nContent-Length: 1000000\r\n", "/v1/completions", 400),
    ("Content-Length with Transfer-Encoding", b"Content-Length: 1000000\r\nTransfer-Encoding: chunked\r\n",
     "/v1/completions", 400),
    ("unknown route", b"Content-Length: 1000000\r\n", "/v1/no-such-route", 404),
]


@pytest.mark.parametrize("name,headers,path,status", REFUSED_BEFORE_THE_BODY, ids=[c[0] for c in REFUSED_BEFORE_THE_BODY])
def test_refused_requests_are_answered_before_their_body_is_read(server, name, headers, path, status):
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.api_key}\r\n"
            "Content-Type: application/json\r\n").encode() + headers + b"\r\n"
    elapsed, line, headers = answer_without_body(server, head)
    assert line.startswith(f"HTTP/1.1 {status}"), line
    assert elapsed < 2.0
    assert headers.get("connection") == "close"  # the unread body must not be taken for the next request
    # And the server still serves.
    assert server.request("GET", "/health", key=False)[0] == 200
