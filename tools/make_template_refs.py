#!/usr/bin/env python3
"""Reference renderings of real chat templates, for tests/template/test_chat_template_refs.cpp.

Renders the `chat_template` of ../shared/assets/tokenizers/{llama3,qwen3,gemma3}/tokenizer_config.json with
Hugging Face transformers itself (`AutoTokenizer.apply_chat_template(..., tokenize=False)`, which configures
jinja2 as lcllm mirrors it: sandbox, trim_blocks, lstrip_blocks, loopcontrols, its own tojson, raise_exception,
strftime_now, namespace) for a fixed set of conversations, and writes one JSON object per line to
tests/fixtures/template/<name>.jsonl:

  {"messages": [...], "add_generation_prompt": bool, "extra": {...}, "expected": "..."}
  {"messages": [...], "add_generation_prompt": bool, "extra": {...}, "error": "..."}   (the template raised)

`extra` holds every other template variable: the tokenizer's special tokens map (bos_token, eos_token, ...), the
template kwargs (enable_thinking) and `tools` when given.

It also writes tests/fixtures/template/features.jsonl: one line per language-feature snippet in FEATURES,
{"template", "variables", "expected" | "error"}, rendered with transformers' own jinja2 environment
(transformers.utils.chat_template_utils._compile_jinja_template).

Usage: python3 tools/make_template_refs.py [--shared DIR] [--out DIR]
Needs: transformers (>= 4.4x), jinja2 >= 3.1.6. No network.
"""
import argparse
import copy
import json
import os
import sys

import jinja2
import transformers
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LONG = "\n".join(f"Line {i}: the quick brown fox jumps over the lazy dog. " * 3 for i in range(60))
UNICODE = "こんにちは世界 — Привет, мир! مرحبا بالعالم 👩‍👩‍👧‍👦 👍🏽 café (NFD: cafe\u0301) नमस्ते ∑∫√"
TRICKY = "Quotes ' \" back\\slash \t tab\r\nCRLF {{ not a tag }} {% raw %} {# c #} <|im_start|><start_of_turn>"
PADDED = "\n\n   padded with whitespace, NBSP and ideographic space \u00a0\u3000 \t\n"


def u(text):
    return {"role": "user", "content": text}


def a(text, **kw):
    m = {"role": "assistant", "content": text}
    m.update(kw)
    return m


def s(text):
    return {"role": "system", "content": text}


COMMON = [
    [u("Hello!")],
    [s("You are a helpful assistant."), u("What is 2+2?")],
    [u("Hi"), a("Hello! How can I help?"), u("Tell me a joke.")],
    [s("Be brief."), u("Q1"), a("A1"), u("Q2"), a("A2"), u("Q3")],
    [u("Hi"), a("Hello there.")],
    [u(UNICODE)],
    [s(UNICODE), u(UNICODE), a(UNICODE), u("ok")],
    [u("")],
    [u(LONG)],
    [u(PADDED), a(PADDED), u(PADDED)],
    [u(TRICKY)],
    [s("  system with trailing spaces   "), u("x")],
]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather — in °C, for a city (e.g. \"Paris\").",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "days": {"type": "integer", "enum": [1, 2, 3]},
                "detailed": {"type": "boolean", "default": False},
                "ratio": {"type": "number", "default": 0.5},
                "tags": {"type": "array", "items": {"type": "string"}},
                "nothing": {"type": "null", "default": None},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "now", "description": "Current time", "parameters": {
    "type": "object", "properties": {}}}}


def qwen3_cases():
    out = []
    for conv in COMMON:
        for agp in (True, False):
            out.append((conv, agp, {}))
    tc = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}
    tc_str = {"type": "function", "function": {"name": "now", "arguments": "{\"tz\": \"UTC\"}"}}
    tc_bare = {"name": "get_weather", "arguments": {"city": "東京", "ratio": 1.5, "detailed": True, "x": None}}
    specific = [
        ([u("2+2?"), a("4", reasoning_content="Simple arithmetic: 2 plus 2.")], False, {}),
        ([u("2+2?"), a("4", reasoning_content="Simple arithmetic.\n"), u("and 3+3?")], True, {}),
        ([u("Q"), a("<think>\nLet me think.\n</think>\n\nThe answer.")], False, {}),
        ([u("Q"), a("<think>\nfirst\n</think>\n\nA1"), u("Q2"), a("<think>second</think>A2")], False, {}),
        ([u("Q"), a("A", thinking="aliased from thinking")], False, {}),
        ([u("Q"), a("A", reasoning="aliased from reasoning")], False, {}),
        ([u("Q"), a("A", reasoning_content=None)], False, {}),
        ([u("Hello")], True, {"enable_thinking": False}),
        ([u("Hello")], True, {"enable_thinking": True}),
        ([u("Hello")], False, {"enable_thinking": False}),
        ([s("You are a weather bot."), u("Weather in Paris?")], True, {"tools": [WEATHER_TOOL, TIME_TOOL]}),
        ([u("Weather in Paris?")], True, {"tools": [WEATHER_TOOL]}),
        ([s("sys"), u("Weather in Paris and time?"), a("", tool_calls=[tc, tc_str]),
          {"role": "tool", "content": "{\"temp\": 21}"}, {"role": "tool", "content": "12:00"},
          a("It is 21°C and noon.")], True, {"tools": [WEATHER_TOOL, TIME_TOOL]}),
        ([u("Weather?"), a("Let me check.", tool_calls=[tc_bare]), {"role": "tool", "content": "sunny"}], True,
         {"tools": [WEATHER_TOOL]}),
        ([u("Weather?"), a("", tool_calls=[tc], reasoning_content="Need the tool."),
          {"role": "tool", "content": "rain"}], True, {}),
        ([u("<tool_response>\nold\n</tool_response>"), a("ok"), u("real question")], True, {}),
        ([u("Q1"), a("A1"), u("<tool_response>x</tool_response>")], True, {}),
        ([u("Q"), s("A mid-conversation system message."), a("A")], True, {}),
        ([s("Only a system message.")], True, {}),
        ([u("Q"), a("\n\nleading newlines", reasoning_content="\n\nthought\n\n")], False, {}),
    ]
    out.extend(specific)
    errors = [
        ([], True, {}),
    ]
    out.extend(errors)
    return out


def gemma3_cases():
    out = []
    for conv in COMMON:
        for agp in (True, False):
            out.append((conv, agp, {}))
    specific = [
        ([{"role": "system", "content": [{"type": "text", "text": "List-form system prompt."}]}, u("Hi")], True, {}),
        ([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "  What is in this image?  "}]}],
         True, {}),
        ([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"},
                                       {"type": "video"}]}, a("ok")], False, {}),
        ([{"role": "user", "content": []}], True, {}),
        # errors: role alternation and content type
        ([u("one"), u("two")], True, {}),
        ([a("assistant first")], True, {}),
        ([s("sys"), a("assistant after system")], True, {}),
        ([u("Q"), {"role": "user", "content": None}], True, {}),
        ([{"role": "user", "content": None}], True, {}),
        ([{"role": "user", "content": 42}], True, {}),
    ]
    out.extend(specific)
    return out


def llama3_cases():
    out = []
    for conv in COMMON:
        for agp in (True, False):
            out.append((conv, agp, {}))
    specific = [
        ([s("sys"), u("Call a tool"), {"role": "ipython", "content": "{\"result\": 1}"}, a("Done.")], True, {}),
        ([u("content null"), a(None)], False, {}),
        ([{"role": "user"}], True, {}),
        ([u("x"), a(["not", "a", "string"])], True, {}),
        ([{"content": "no role"}], True, {}),
        ([], True, {}),
    ]
    out.extend(specific)
    return out


CASES = {"llama3": llama3_cases, "qwen3": qwen3_cases, "gemma3": gemma3_cases}


# Language-feature snippets rendered with transformers' own jinja2 environment (features.jsonl):
# (template, variables). Each pins one behaviour of the subset lcllm implements.
USERS = [{"name": "ann", "active": True, "role": "admin", "age": 31},
         {"name": "Bob", "active": False, "role": "user"},
         {"name": "cy", "active": True, "role": "user", "age": 5}]
TOJSON_X = {"b": [1, 2.5, None, True, {}, []], "a": "é\"\n\t/<>&'", "emoji": "😀", "n": 1e20, "neg": -0.0,
            "nested": {"k": [{"z": 1}]}}
FEATURES = [
    # whitespace control, trim_blocks, lstrip_blocks, newline handling
    ("a\n  {% if true %}\n    x\n  {% endif %}\nb", {}),
    ("{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", {}),
    ("  {{- 'x' -}}  \n y", {}),
    ("a {#- comment -#} b\n  {# own line #}\nc", {}),
    ("  {%+ if true %}x{% endif %}", {}),
    ("{% if true +%}\nx{% endif %}|{% if true -%}\n\n  y  {%- endif %}|", {}),
    ("{% raw %}{{ not }} {% if %}{% endraw %}\nafter", {}),
    ("  {%- raw -%}  spaced  {%- endraw -%}  |", {}),
    ("text\r\nwith crlf\r\n{% if true %}\r\nyes\r\n{% endif %}\r\n", {}),
    ("x\n\n", {}),
    ("\t{% if true %}t{% endif %} {% if true %}u{% endif %}\n   {{ 'v' }}", {}),
    ("a  {% if true -%}   \n  b{%- endif %}  c", {}),
    ("{% for i in [1, 2] -%}\n  {{ i }}\n{%- endfor %}\n  {%- if true %} end{% endif %}", {}),
    ("{{ '{{' }} {{ '}}' }} {{ {'a': {'b': 1}} }}", {}),
    # arithmetic and Python number rendering
    ("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} "
     "{{ 7 / 2 }} {{ 6 / 3 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("{{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0 }} {{ 3.0 * 2 }} {{ 1e-5 }} {{ 123456789012345678 }} "
     "{{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 12345.678 }} {{ -0.0 }} {{ f }} {{ big }}", {"f": 3.14159, "big": 2**62}),
    ("{{ 'a' ~ 1 ~ none ~ true ~ 2.5 }} {{ 'ab' * 3 }} {{ 2 * 'c' }} {{ [1] * 2 }} {{ [1,2] + [3] }} {{ 'x' + 'y' }}", {}),
    ("{{ true and 'x' }} {{ false or 'y' }} {{ not none }} {{ '' or 'empty' }} {{ 0 and 1 }} {{ [] or {} }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1,2] == [1,2] }} {{ 1 == 1.0 }} {{ true == 1 }} "
     "{{ none == none }} {{ 'a' != 'b' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2.0 }}", {}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} {{ 'z' not in 'abc' }}", {}),
    ("{{ 'yes' if x else 'no' }} {{ 'yes' if not x else 'no' }} [{{ 'a' if false }}]", {"x": 1}),
    ("{{ -x }} {{ +x }} {{ -(1 + 2) }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 10 - 2 - 3 }} {{ 100 / 10 / 5 }}", {"x": 4}),
    # subscripts, slices, attributes
    ("{{ s[1:] }}|{{ s[::-1] }}|{{ s[-2:] }}|{{ s[:2] }}|{{ l[1:3] }}|{{ l[::-2] }}|{{ s[0] }}|{{ l[-1] }}|"
     "{{ l[10] }}|{{ l[-10:10] }}|{{ l[3:1] }}|{{ l[::2] }}|{{ l.0 }}",
     {"s": "héllo wörld", "l": [1, 2, 3, 4, 5]}),
    ("{{ d.a }} {{ d['b'] }} [{{ d.missing }}] {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} "
     "{{ d.items() | list }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.b[1] }}",
     {"d": {"a": 1, "b": [1, 2]}}),
    ("{{ [1, 'two', none, true, 2.5, {'k': 'v'}, (1, 2), (3,), ()] }}", {}),
    ("{{ {'a': \"it's\", 'b': 'q\"', 'c': 'both \\' \"', 'd': 'nl\\n\\ttab\\\\'} }}", {}),
    ("{{ x }}", {"x": {"nested": {"list": [1, 2.0, "s", None, False]}, "unicode": "é☃\u00a0\u200b"}}),
    ("{{ x.y.z }} {{ x['y']['z'] }} {{ x.y.get('z') }}", {"x": {"y": {"z": "deep"}}}),
    # str methods
    ("{{ '  hi  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|"
     "{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'a b c'.rsplit(' ', 1) }}|"
     "{{ 'Hello'.startswith('He') }}|{{ 'Hello'.endswith(('x','lo')) }}|{{ 'MiXed'.lower() }}|{{ 'MiXed'.upper() }}|"
     "{{ 'hello world'.title() }}|{{ 'hELLO'.capitalize() }}|{{ 'aaa'.replace('a','b',2) }}|{{ 'abc'.find('c') }}|"
     "{{ 'abcabc'.count('b') }}|{{ '-'.join(['a','b']) }}|{{ '{} and {}'.format(1, 'x') }}|{{ '123'.isdigit() }}|"
     "{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ '\\u3000 x \\u00a0'.strip() }}|{{ 'ÉCOLE'.lower() }}|{{ 'straße'.upper() }}", {}),
    # filters
    ("{{ '  x  '|trim }}|{{ 'xyx'|trim('x') }}|{{ [1,2,3]|length }}|{{ 'héllo'|length }}|{{ {'a': 1}|count }}|"
     "{{ [1,2]|first }}|{{ [1,2]|last }}|{{ 'abc'|first }}|{{ 'abc'|upper }}|{{ 'ABC'|lower }}|"
     "{{ 'hello wORLD'|capitalize }}|{{ 'hello-world foo(bar) [x]y'|title }}|{{ 'aXbX'|replace('X','y') }}|"
     "{{ [1,2,3]|join(', ') }}|{{ ['a', none, 1]|join }}|{{ 42|string }}|{{ '42'|int + 1 }}|{{ '3.7'|int }}|"
     "{{ 'x'|int }}|{{ 'x'|int(-1) }}|{{ ' 12 '|int }}|{{ 4.9|int }}|{{ '2.5'|float }}|{{ 'x'|float }}|{{ 3|float }}|"
     "{{ x|default('dflt') }}|{{ none|default('d2') }}|{{ ''|d('d3', true) }}|{{ 0|default(5) }}", {}),
    ("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}{% for k, v in d.items() %}{{ k }}{% endfor %}",
     {"d": {"z": 1, "a": 2, "ü": [3]}}),
    ("{{ users|selectattr('active')|map(attribute='name')|list }} "
     "{{ users|rejectattr('active')|map(attribute='name')|join(',') }} "
     "{{ users|selectattr('role', 'equalto', 'admin')|list|length }} {{ users|map(attribute='age', default=0)|list }} "
     "{{ users|selectattr('age', 'defined')|map(attribute='name')|list }} {{ users|map(attribute='name')|map('upper')|list }}",
     {"users": USERS}),
    ("{{ [3,1,2]|sort }} {{ ['b','A','c']|sort }} {{ ['b','A','c']|sort(case_sensitive=true) }} "
     "{{ users|sort(attribute='name', reverse=true)|map(attribute='name')|list }} {{ [1,2,2,'a','A']|unique|list }} "
     "{{ [1,2,3]|reverse|list }} {{ 'abc'|reverse }} {{ [[2, 'b'], [1, 'a']]|sort }}", {"users": USERS}),
    ("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}|"
     "{{ 'x\\n'|indent }}|{{ ''|indent(first=true) }}", {}),
    ("{{ x|tojson }}\n{{ x|tojson(indent=2) }}\n{{ x|tojson(indent=4, sort_keys=true) }}\n"
     "{{ x|tojson(separators=(',', ':')) }}\n{{ 'é😀'|tojson(ensure_ascii=true) }}\n{{ 'ctrl\\x01\\x7f\\u2028'|tojson }}\n"
     "{{ [1, [2, []], {}]|tojson(indent=0) }}\n{{ (1, 'a')|tojson }} {{ none|tojson }} {{ 'x'|tojson(indent='\\t') }}",
     {"x": TOJSON_X}),
    ("{{ x|safe }} {{ '<a href=\"x\">&\\''|escape }} {{ [1,2]|sum }} {{ [1.5, 2]|sum }} {{ [3,1,2]|max }} "
     "{{ [3,1,2]|min }} {{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ 3.5|round }} {{ 7|round }} "
     "{{ 2.5|round(method='floor') }} {{ 'a b  c'|wordcount }} {{ users|sum(attribute='age') }}",
     {"x": "<b>", "users": [{"age": 1}, {"age": 2}]}),
    ("{{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('even')|list }} {{ ['a', 1]|select('string')|list }} "
     "{{ [0, 1, '', 'x']|select|list }} [{{ 'x'|center(5) }}] {{ {'b': 1, 'A': 2}|dictsort }} "
     "{{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }}", {}),
    ("{{ '%s-%d-%.2f|%5s|%-4d|%03d|%x|%%' % ('a', 3, 1.5, 'r', 7, 5, 255) }} {{ '%s' % 'one' }} "
     "{{ '%s and %s'|format(7, 'x') }} {{ 'v=%r' % ('q',) }}", {}),
    # tests
    ("{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ none is none }} {{ 'a' is string }} "
     "{{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ true is boolean }} {{ 1 is integer }} "
     "{{ true is integer }} {{ 1.0 is float }} {{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} "
     "{{ 'a' is iterable }} {{ 1 is iterable }} {{ y is iterable }} {{ {} is sequence }} {{ 'a' is sequence }} "
     "{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 2 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} "
     "{{ 1 is equalto 1 }} {{ 1 is eq 1 }} {{ 2 is in [1,2] }} {{ 'a' is lower }} {{ 'A' is upper }} "
     "{{ x is sameas 1 }} {{ x is not none }} {{ 3 is gt 2 }} {{ 3 is ge 3 }} {{ 2 is lt 3 }} {{ 2 is ne 3 }} "
     "{{ range is callable }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ x is number and x is not string }}",
     {"x": 1}),
    # loops
    ("{% for x in l %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}/{{ loop.first }}/"
     "{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }}/{{ loop.depth }};{% endfor %}",
     {"l": ["a", "b", "c"]}),
    ("{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in l if x != 'b' %}{{ loop.index }}{{ x }}"
     "{{ loop.length }}{{ loop.last }}{% else %}no{% endfor %}|{% for x in l if x == 'q' %}x{% else %}none{% endfor %}",
     {"l": ["a", "b", "c"]}),
    ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}"
     "{{ x }}{% endfor %}|{% for x in [1] %}{% break %}{% else %}else{% endfor %}", {}),
    ("{% for a, b in [(1,2),(3,4)] %}{{ a + b }}{% endfor %} {% for c in 'héllo' %}[{{ c }}]{% endfor %} "
     "{% for k in {'x':1,'y':2} %}{{ k }}{% endfor %} {% for (a, b) in {'p': 1}.items() %}{{ a }}{{ b }}{% endfor %}",
     {}),
    ("{% for i in [1,2] %}{% set outer = loop %}{% for j in [1,2] %}{{ outer.index }}{{ loop.index }} "
     "{% endfor %}{% endfor %}{% for x in [1,2,3] %}{{ loop.cycle('odd','even') }} {% endfor %}", {}),
    ("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }}", {}),
    ("{% for m in messages %}{% for m2 in messages %}{{ m.role[0] }}{{ m2.role[0] }}{% endfor %},{% endfor %}",
     {"messages": [{"role": "user"}, {"role": "assistant"}]}),
    # set, scoping, namespace
    ("{% set x = 1 %}{% for i in [1,2,3] %}{% set x = x + i %}{{ x }}{% endfor %}|{{ x }}|"
     "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = (1, 'x') %}{{ t }} {% set l = [1, 2,] %}{{ l }} "
     "{% set c, d = 'xy' %}{{ d }}{{ c }}", {}),
    ("{% set ns = namespace(count=0, items=[]) %}{% for i in [1,2,3] %}{% set ns.count = ns.count + i %}"
     "{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.count }} {{ ns.items }} {{ ns.missing is defined }} "
     "{% set ns.new = 'n' %}{{ ns.new }} {{ ns }}", {}),
    ("{% set body %}Hello {{ name }}!{% endset %}[{{ body }}]{% set up | upper %}shout{% endset %}{{ up }}",
     {"name": "Ann"}),
    ("{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}", {"a": 0, "b": 0, "c": 1}),
    ("{% if a %}A{% elif b %}B{% else %}D{% endif %}", {"a": 0, "b": 0}),
    ("{% with x = 5, y = 6 %}{{ x + y }}{% endwith %}[{{ x }}]", {}),
    # macros
    ("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} "
     "{{ greet('Bob', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }}", {}),
    ("{% macro f(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ f(1, 2, 3) }} {{ f(1, k=2) }}", {}),
    ("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner "
     "{{ 1 + 1 }}{% endcall %}", {}),
    ("{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(5) }}", {}),
    ("{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    ("{% set t = 1 %}{% macro g() %}{{ t }}{% endmacro %}{% set t = 2 %}{{ g() }}", {}),
    ("{% macro render_tool(t) -%}\n  {{ t.name }}: {{ t.description | trim }}\n{%- endmacro %}"
     "{% for t in tools %}{{ render_tool(t) }}\n{% endfor %}",
     {"tools": [{"name": "a", "description": " first "}, {"name": "b", "description": "second\n"}]}),
    # literals, globals, undefined
    ("{{ 'multi' 'part' }} {{ \"dq\" }} {{ 'esc\\n\\t\\u00e9\\x41\\\\\\'' }} {{ '\\d' }}", {}),
    ("{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_0.5e1 }} {{ 2e3 }} {{ 0 }}", {}),
    ("{{ none }} {{ true }} {{ True }} {{ false }} {{ None }} {{ nOne }}", {}),
    ("{{ strftime_now('%Y')|length }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }} {{ dict(x, c=3) }}",
     {"x": {"a": 1}}),
    ("[{{ undefined_var }}]{{ undefined_var|length }}{% for x in undefined_var %}x{% endfor %}"
     "{{ undefined_var is defined }}{{ undefined_var|default('d') }}[{{ undefined_var|trim }}]"
     "{{ undefined_var|list }}{{ undefined_var == undefined_var }}", {}),
    ("{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    ("{{ 'abc'.upper()[::-1] ~ '!' }} {{ 'x' ~ (1 if true else 2) }} {{ [1,2,3]|map('string')|join }} "
     "{{ ('a' ~ 'b')|upper }} {{ [1, 2]|length * 2 }}", {}),
    ("{{ messages[0]['content'] }} {{ messages[-1].content|upper }} {{ messages|length }} "
     "{{ messages|selectattr('role', 'eq', 'user')|list|length }}",
     {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}),
    ("{{ x }} {{ x|tojson }} {{ x.a }}", {"x": {"a": 1.0, "b": 100000000000000000000.0, "c": 1.5e-7}}),
    # errors (message substring in "error")
    ("{{ raise_exception('boom: ' ~ 42) }}", {}),
    ("{{ 'a' + 1 }}", {}),
    ("{{ 1 / 0 }}", {}),
    ("{{ 1 // 0 }}", {}),
    ("{{ undefined_var.attr }}", {}),
    ("{{ none.attr.x }}", {}),
    ("{{ d.missing.x }}", {"d": {}}),
    ("{{ l[5].x }}", {"l": [1]}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    ("{{ range(200000)|length }}", {}),
    ("{{ x.pop('a') }}", {"x": {"a": 1}}),
    ("{{ [1].append(2) }}", {}),
    ("{{ x|tojson }}", {}),
    ("{% set a, b = [1, 2, 3] %}", {}),
    ("{{ 1 < 'a' }}", {}),
    ("{{ 'abc'.split('') }}", {}),
    ("{{ none|length }}", {}),
    ("{{ 5() }}", {}),
]


def feature_cases(out_dir):
    from transformers.utils.chat_template_utils import _compile_jinja_template
    path = os.path.join(out_dir, "features.jsonl")
    n_ok = n_err = 0
    with open(path, "w", encoding="utf-8") as f:
        for tmpl, variables in FEATURES:
            rec = {"template": tmpl, "variables": variables}
            try:
                rec["expected"] = _compile_jinja_template(tmpl).render(**copy.deepcopy(variables))
                n_ok += 1
            except Exception as e:  # noqa: BLE001 - any template error is a reference
                rec["error"] = str(e)
                n_err += 1
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{path}: {n_ok} renderings, {n_err} errors")


def render(tok, messages, agp, extra):
    kwargs = {k: v for k, v in extra.items() if k != "tools"}
    return tok.apply_chat_template(copy.deepcopy(messages), tools=extra.get("tools"), add_generation_prompt=agp,
                                   tokenize=False, **kwargs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "template"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, make in CASES.items():
        tok = AutoTokenizer.from_pretrained(os.path.join(args.shared, "assets", "tokenizers", name))
        special = {k: v for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
        n_ok = n_err = 0
        path = os.path.join(args.out, f"{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for messages, agp, kw in make():
                extra = dict(special)
                extra.update(kw)
                rec = {"messages": messages, "add_generation_prompt": agp, "extra": extra}
                try:
                    rec["expected"] = render(tok, messages, agp, extra)
                    n_ok += 1
                except (jinja2.exceptions.TemplateError, ValueError) as e:
                    rec["error"] = str(e)
                    n_err += 1
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        print(f"{path}: {n_ok} renderings, {n_err} errors (transformers {transformers.__version__}, "
              f"jinja2 {jinja2.__version__})")
    feature_cases(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
