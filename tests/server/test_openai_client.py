"""The official openai Python client against a live `lcllm serve`: chat and completions, streaming and not,
stop sequences, usage, n, logprobs, the policy extension field and error mapping."""
import re

import openai
import pytest

from conftest import API_KEY, Server

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name three colours."}]


def test_models_lists_the_served_name(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_chat_completion_with_usage(client):
    r = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=12, temperature=0)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    c = r.choices[0]
    assert c.message.role == "assistant"
    assert isinstance(c.message.content, str) and c.message.content
    assert c.finish_reason == "length"
    assert r.usage.completion_tokens == 12
    assert r.usage.prompt_tokens > 10  # system + user through the Llama 2 chat template
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12


def test_completion_greedy_is_deterministic(client):
    a = client.completions.create(model="tiny", prompt="The capital of France is", max_tokens=10, temperature=0)
    b = client.completions.create(model="tiny", prompt="The capital of France is", max_tokens=10, temperature=0)
    assert a.object == "text_completion"
    assert a.choices[0].text == b.choices[0].text and a.choices[0].text
    assert a.usage.prompt_tokens == 6 and a.usage.completion_tokens == 10


def test_seeded_sampling_repeats_and_differs_by_seed(client):
    def run(seed):
        return client.completions.create(model="tiny", prompt="Once", max_tokens=12, temperature=1.0, top_p=0.9,
                                         seed=seed).choices[0].text
    assert run(7) == run(7)
    assert len({run(7), run(8), run(9)}) > 1


def test_chat_stream_matches_non_stream(client):
    whole = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=16, temperature=0)
    stream = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=16, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    pieces, finish, usage, roles = [], None, None, []
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.role:
                roles.append(c.delta.role)
            if c.delta.content:
                pieces.append(c.delta.content)
            if c.finish_reason:
                finish = c.finish_reason
    assert roles == ["assistant"]
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == "length"
    assert usage.completion_tokens == 16 and usage.prompt_tokens == whole.usage.prompt_tokens


def test_completion_stream_matches_non_stream(client):
    whole = client.completions.create(model="tiny", prompt="Hello", max_tokens=20, temperature=0)
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="tiny", prompt="Hello", max_tokens=20, temperature=0, stream=True) if c.choices)
    assert text == whole.choices[0].text


def test_stop_sequences_cut_the_output(client):
    full = client.completions.create(model="tiny", prompt="Hello", max_tokens=30, temperature=0).choices[0].text
    assert len(full) > 12
    stop = full[6:9]
    want = full[:full.find(stop)]
    r = client.completions.create(model="tiny", prompt="Hello", max_tokens=30, temperature=0, stop=[stop, "@@@@"])
    assert r.choices[0].text == want
    assert r.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="tiny", prompt="Hello", max_tokens=30, temperature=0, stop=stop, stream=True) if c.choices)
    assert streamed == want


def test_n_choices_and_logprobs(client):
    r = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=5, temperature=0.8, seed=3, n=3,
                                       logprobs=True, top_logprobs=3)
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    assert r.usage.completion_tokens == 15
    for c in r.choices:
        content = c.logprobs.content
        assert len(content) == 5
        for entry in content:
            assert entry.logprob <= 0
            assert len(entry.top_logprobs) == 3
            tops = [t.logprob for t in entry.top_logprobs]
            assert tops == sorted(tops, reverse=True)
            assert entry.logprob <= tops[0] + 1e-6
    g = client.completions.create(model="tiny", prompt="Hi", max_tokens=4, temperature=0, logprobs=2)
    lp = g.choices[0].logprobs
    assert len(lp.tokens) == 4 and len(lp.token_logprobs) == 4 and len(lp.top_logprobs) == 4
    # Greedy picks the most likely token: its logprob is the top one.
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs):
        assert abs(chosen - max(top.values())) < 1e-5


def test_attention_policy_extension_field(client):
    r = client.completions.create(model="tiny", prompt="Hello", max_tokens=4, temperature=0,
                                  extra_body={"attention_policy": "streaming"})
    assert r.usage.completion_tokens == 4
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="tiny", prompt="Hello", max_tokens=4,
                                  extra_body={"attention_policy": "/etc/passwd"})
    assert "attention_policy" in str(e.value)


def test_errors_map_to_openai_exceptions(client, server):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=[], max_tokens=4)
    assert e.value.status_code == 400 and "messages" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="tiny", prompt="word " * 600, max_tokens=4)
    # Both numbers: the context length and what the request needs.
    assert re.search(r"context length is 512 tokens, but the request needs \d+ \(\d+ in the prompt \+ 4 max_tokens",
                     str(e.value)), str(e.value)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="not-this-one", prompt="Hi", max_tokens=2)
    bad = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.completions.create(model="tiny", prompt="Hi", max_tokens=2)
    # Still serving.
    assert client.completions.create(model="tiny", prompt="Hi", max_tokens=2).usage.completion_tokens == 2


def test_env_vars_configure_the_server():
    s = Server(api_key=None, name=None, env={"LCLLM_SERVED_MODEL_NAME": "from-env", "LCLLM_API_KEY": "env-key",
                                  "LCLLM_MAX_MODEL_LEN": "64"})
    try:
        status, _, _ = s.request("GET", "/v1/models", key=False)
        assert status == 401
        status, _, body = s.request("GET", "/v1/models", headers={"Authorization": "Bearer env-key"})
        assert status == 200 and b"from-env" in body and b'"max_model_len":64' in body
    finally:
        s.stop()
    assert s.proc.returncode == 0


def test_streamed_text_equals_whole_text_for_multilingual_prompts(client):
    """Streamed pieces joined equal the whole response on prompts whose outputs hold multi-byte characters (the
    byte-level case, a character split over several byte-fallback tokens, is pinned in test_text_pieces.cpp)."""
    non_ascii = 0
    for i, prompt in enumerate(["你好", "Ünïcödé", "日本語の文", "emoji 😀", "Ελληνικά", "русский", "x", "¿qué?"]):
        whole = client.completions.create(model="tiny", prompt=prompt, max_tokens=32, temperature=0, seed=i)
        pieces = [c.choices[0].text for c in client.completions.create(
            model="tiny", prompt=prompt, max_tokens=32, temperature=0, stream=True) if c.choices]
        assert "".join(pieces) == whole.choices[0].text
        non_ascii += sum(1 for ch in whole.choices[0].text if ord(ch) > 127 and ch != "\ufffd")
    assert non_ascii > 0  # the random model does produce multi-byte characters, so the check means something
