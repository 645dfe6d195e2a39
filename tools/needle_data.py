"""Training documents for the needle model: filler with needles and the queries that retrieve them.

A document is one long text in the exact format of tools/needle_contract.py: filler sentences joined with " ",
needles and variable-tracking statements at sentence boundaries, and queries, each followed by its answer
(" " + answer + "."). Many queries per document give dense supervision at every distance; every document ends
with a query, as an evaluation prompt does. The whole text is tokenized at once (the same tokenization `lcllm
eval` gets), and token offsets mark which positions predict answer tokens.
"""

import numpy as np

from needle_contract import CONTRACT, FILLER, KEYS, VT_NAMES, random_value

SEP = CONTRACT["answer_separator"]
TASKS = ("single", "multivalue", "multiquery", "vt")
W_ANSWER, W_OTHER = 1.0, 0.05  # loss weight of answer tokens and of all other tokens


def _place(rng, slots, n, after=0):
    """n sorted random sentence slots in [after, slots]."""
    return sorted(rng.randint(after, slots) for _ in range(n))


def _groups(rng, n_groups, task_mix, new_value):
    """The facts of one document: [(task, statements, query, answer, key)]; statements keep their order."""
    keys = rng.sample(KEYS, len(KEYS))
    vt_names = rng.sample(VT_NAMES, len(VT_NAMES))
    out = []
    for _ in range(n_groups):
        task = rng.choices(TASKS, weights=task_mix)[0]
        if task == "multiquery" or (task == "vt" and len(vt_names) < 5) or (task == "multivalue" and not keys):
            task = "single"  # multi-query questions are made later from several single-key needles
        if not keys:
            break
        if task == "single":
            key, value = keys.pop(), new_value()
            out.append((task, [CONTRACT["needle"].format(key=key, value=value)],
                        CONTRACT["query_single"].format(key=key), value, key))
        elif task == "multivalue":
            key, values = keys.pop(), [new_value() for _ in range(rng.randint(2, 4))]
            out.append((task, [CONTRACT["needle"].format(key=key, value=v) for v in values],
                        CONTRACT["query_multivalue"].format(key=key), SEP.join(values), key))
        else:  # vt: one assignment and four copies, in order (RULER: one chain, four hops)
            names, vt_names = vt_names[:5], vt_names[5:]
            value = new_value()
            st = [CONTRACT["vt_assign"].format(var=names[0], value=value)]
            st += [CONTRACT["vt_copy"].format(var=names[i], src=names[i - 1]) for i in range(1, 5)]
            out.append((task, st, CONTRACT["query_vt"].format(value=value), SEP.join(names), None))
    return out


def build_document(rng, n_tokens, tokens_per_sentence=8.2, task_mix=(0.7, 0.1, 0.1, 0.1)):
    """Returns (text, answers): answers = [(char_start, char_end, task, answer_string)] of each answer span."""
    # Needle density: from one fact per document (like single NIAH) to one per ~40 tokens; facts, queries and
    # answers take at most about half of the document.
    max_groups = max(1, min(len(KEYS) // 2, n_tokens // 40))
    n_groups = rng.randint(1, max_groups) if rng.random() < 0.3 else rng.randint(max(1, max_groups // 3), max_groups)
    used_values = set()

    def new_value():
        while True:
            v = random_value(rng)
            if v not in used_values:
                used_values.add(v)
                return v

    groups = _groups(rng, n_groups, task_mix, new_value)
    # Tokens per statement ~9, per query + answer ~17 (+3 per extra value or name).
    cost = lambda g: 9 * len(g[1]) + 17 + 3 * g[3].count(",")  # noqa: E731
    while len(groups) > 1 and sum(map(cost, groups)) > n_tokens * 0.5:
        groups.pop()
    singles = [g for g in groups if g[0] == "single"]
    mq = []
    if task_mix[2] > 0 and len(singles) >= 2:
        for _ in range(max(1, len(singles) // 5)):
            chosen = rng.sample(singles, rng.randint(2, min(4, len(singles))))
            mq.append(chosen)
    used = sum(map(cost, groups)) + sum(14 + 5 * len(c) for c in mq)
    n_sent = max(2, int((n_tokens - used) / tokens_per_sentence))

    events = []  # (slot, order, kind, payload): kind "s" = statement text, "q" = (query, answer, task)
    last_slot = {}
    for order, (task, statements, query, answer, key) in enumerate(groups):
        slots = _place(rng, n_sent, len(statements))
        for slot, st in zip(slots, statements):
            events.append((slot, 2 * order, "s", st))
        last_slot[key] = slots[-1]
        if task != "single" or rng.random() < 0.8:
            events.append((rng.randint(slots[-1], n_sent), 2 * order + 1, "q", (query, answer, task)))
    for chosen in mq:
        q = CONTRACT["query_multiquery"].format(keys=SEP.join(g[4] for g in chosen))
        after = max(last_slot[g[4]] for g in chosen)
        events.append((rng.randint(after, n_sent), 2 * len(groups) + 1, "q",
                       (q, SEP.join(g[3] for g in chosen), "multiquery")))
    # The document ends with a query about something it holds, as an evaluation prompt does.
    queries = [i for i, e in enumerate(events) if e[2] == "q"]
    if queries:
        i = rng.choice(queries)
        events[i] = (n_sent + 1,) + events[i][1:]
    events.sort(key=lambda e: (e[0], e[1]))

    parts, answers, pos, ei = [], [], 0, 0
    for slot in range(n_sent + 2):
        while ei < len(events) and events[ei][0] == slot:
            _, _, kind, payload = events[ei]
            ei += 1
            text = payload if kind == "s" else payload[0]
            if parts:
                pos += 1  # the joining " "
            parts.append(text)
            pos += len(text)
            if kind == "q":
                ans = " " + payload[1] + "."
                answers.append((pos, pos + len(ans), payload[2], payload[1]))
                parts[-1] += ans
                pos += len(ans)
        if slot < n_sent:
            s = rng.choice(FILLER)
            if parts:
                pos += 1
            parts.append(s)
            pos += len(s)
    return " ".join(parts), answers


def encode_document(tokenizer, text, answers, seq_len):
    """Token ids [seq_len+1] (BOS first, padded with EOS), loss weights [seq_len] for predicting ids[1:], and
    answer group ids [seq_len] (-1 outside answers) so a whole answer can be scored as right or wrong."""
    enc = tokenizer.encode(text)  # adds BOS through the post-processor
    ids = np.full(seq_len + 1, 2, dtype=np.int64)
    n = min(len(enc.ids), seq_len + 1)
    ids[:n] = enc.ids[:n]
    weights = np.zeros(seq_len, dtype=np.float32)
    weights[: n - 1] = W_OTHER
    groups = np.full(seq_len, -1, dtype=np.int64)
    offs = enc.offsets
    spans = [(a, b) for a, b, _, _ in answers]
    ai = 0
    for t in range(1, n):
        s, e = offs[t]
        while ai < len(spans) and spans[ai][1] <= s:
            ai += 1
        if ai < len(spans) and e > spans[ai][0] and s < spans[ai][1]:
            weights[t - 1] = W_ANSWER
            groups[t - 1] = ai
    # An answer cut by the sequence end is not scored (its tokens keep the ordinary weight).
    if n < len(enc.ids):
        cut = groups[n - 2] if n >= 2 else -1
        if cut >= 0:
            weights[groups == cut] = W_OTHER
            groups[groups == cut] = -1
    return ids, weights, groups, [a[2] for a in answers]


_TPS = {}


def _tokens_per_sentence(tokenizer):
    """Mean tokens of a filler sentence (with its joining space), to size documents."""
    if id(tokenizer) not in _TPS:
        _TPS[id(tokenizer)] = float(np.mean([len(tokenizer.encode(" " + s, add_special_tokens=False).ids)
                                             for s in FILLER]))
    return _TPS[id(tokenizer)]


def make_batch(tokenizer, rng, batch, seq_len, task_mix=(0.7, 0.1, 0.1, 0.1)):
    """A batch of documents: ids [B, L+1] int64, weights [B, L] float32, groups [B, L] int64 (unique across the
    batch), tasks: list with the task name of each group id."""
    ids = np.empty((batch, seq_len + 1), np.int64)
    weights = np.empty((batch, seq_len), np.float32)
    groups = np.empty((batch, seq_len), np.int64)
    tasks = []
    for b in range(batch):
        text, answers = build_document(rng, int(seq_len * 1.02), _tokens_per_sentence(tokenizer), task_mix)
        i, w, g, t = encode_document(tokenizer, text, answers, seq_len)
        g[g >= 0] += len(tasks)
        ids[b], weights[b], groups[b] = i, w, g
        tasks += t
    return ids, weights, groups, tasks
