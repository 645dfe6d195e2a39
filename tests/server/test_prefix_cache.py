"""Prefix caching (E11 item 2): requests sharing a prefix reuse its cached KV pages, and every output is identical
(greedy) to a server without the cache — shared prefixes, partial pages, n > 1 forks, evictions under memory
pressure, concurrent requests and every preset, in a seeded random sequence of requests."""
import concurrent.futures
import json
import random

import pytest

from conftest import Server

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
         "romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def completion(server, prompt, **kw):
    body = {"model": "tiny", "prompt": prompt, "max_tokens": 4, "temperature": 0, **kw}
    status, _, data = server.request("POST", "/v1/completions", body=body)
    assert status == 200, data
    return [c["text"] for c in sorted(json.loads(data)["choices"], key=lambda c: c["index"])]


@pytest.fixture(scope="module")
def pair():
    # A small KV cache (--ctx-size 1024 tokens = 64 pages) so that the random sequence also forces evictions.
    common = ("--max-model-len", "512", "--ctx-size", "1024", "--max-num-seqs", "4")
    cached, plain = Server(*common), Server(*common, "--no-prefix-caching")
    yield cached, plain
    cached.stop()
    plain.stop()


def test_a_shared_prefix_is_reused_and_changes_nothing(pair):
    cached, plain = pair
    doc = " ".join(WORDS * 4)  # ~100 tokens: several full pages
    before = cached.metrics()
    a = completion(cached, doc + " first question")
    b = completion(cached, doc + " second question")
    after = cached.metrics()
    assert after["lcllm_prefix_cache_hits_total"] - before["lcllm_prefix_cache_hits_total"] >= 64
    assert after["lcllm_prefix_cache_pages"] > 0
    # Fewer prompt tokens were prefilled the second time.
    assert a == completion(plain, doc + " first question")
    assert b == completion(plain, doc + " second question")
    assert plain.metrics()["lcllm_prefix_cache_hits_total"] == 0


def test_random_requests_with_shared_prefixes_equal_a_server_without_the_cache(pair):
    cached, plain = pair
    rng = random.Random(5)
    prefixes = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 120))) for _ in range(8)]
    requests = []
    for _ in range(24):
        prompt = rng.choice(prefixes) + " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 20)))
        kw = {"n": rng.choice([1, 1, 2])}
        if rng.random() < 0.3:
            kw["attention_policy"] = rng.choice(["streaming", "tidal"])
        requests.append((prompt, kw))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # concurrent requests share prefixes too
        got = list(pool.map(lambda r: completion(cached, r[0], **r[1]), requests))
    want = [completion(plain, p, **kw) for p, kw in requests]
    assert got == want
    m = cached.metrics()
    assert m["lcllm_prefix_cache_hits_total"] > 0
    assert m["lcllm_prefix_cache_evictions_total"] > 0  # 8 prefixes of up to ~200 tokens overflow 64 pages


def test_plans_with_the_same_prefill_share_pages_and_others_do_not(pair):
    """Prompt pages depend only on the prefill phase: full and tidal (dense prefill) share them; streaming's sparse
    prefill does not reuse them."""
    cached, plain = pair
    doc = " ".join(reversed(WORDS * 5))
    completion(cached, doc + " one")
    before = cached.metrics()["lcllm_prefix_cache_hits_total"]
    got = completion(cached, doc + " two", attention_policy="tidal")
    assert cached.metrics()["lcllm_prefix_cache_hits_total"] - before >= 64
    assert got == completion(plain, doc + " two", attention_policy="tidal")
    before = cached.metrics()["lcllm_prefix_cache_hits_total"]
    got = completion(cached, doc + " three", attention_policy="streaming")
    assert cached.metrics()["lcllm_prefix_cache_hits_total"] == before  # its sparse prefill has its own salt
    assert got == completion(plain, doc + " three", attention_policy="streaming")
