"""The needle model's task text: the `lcllm_eval.json` contract (version 1) and the prompt builders that follow it.

One source of truth for three users: tools/train_needle_model.py (training data), tools/eval_needle_transformers.py
(the transformers-side accuracy check) and the `lcllm_eval.json` shipped in models/needle/, which `lcllm eval
niah|ruler` reads to build the same prompts. Prompt = BOS (added by the tokenizer) + haystack with needles inserted
at sentence boundaries + " " + query; the model continues with " " + answer + ".".
"""
import json
import random

# Haystack sentences: plain English, no digits, no key words, no "secret code" / "VAR" text, so a needle is the
# only place a key or a number appears.
FILLER = [
    "The grass is green.", "The sky is blue today.", "A small boat drifts along the quiet river.",
    "Children play in the park after school.", "The old house stands at the end of the road.",
    "Rain falls softly on the roof at night.", "The baker opens his shop early in the morning.",
    "A gentle wind moves through the tall trees.", "The library is full of old books.",
    "Birds sing on the branches near the window.", "The train leaves the station on time.",
    "She walks her dog along the beach.", "The farmer works in the field all day.",
    "Snow covers the hills in the winter.", "The market is busy on the weekend.",
    "He reads the newspaper with his coffee.", "The lake is calm and clear.",
    "A bright moon rises over the valley.", "The teacher writes on the board.",
    "Leaves turn red and gold in the autumn.", "The city lights shine across the bay.",
    "A cat sleeps in the warm sun.", "The road winds up the side of the mountain.",
    "Fresh bread smells good in the kitchen.", "The bridge crosses the wide river.",
    "People gather in the square for the festival.", "The garden is full of flowers in the spring.",
    "A quiet street leads to the harbor.", "The clock on the wall ticks slowly.",
    "Waves crash against the rocky shore.", "The museum opens its doors at nine.",
    "A long path runs through the forest.", "The students listen to the lecture.",
    "Smoke rises from the chimney of the cottage.", "The fishermen return with their nets.",
    "The meadow is quiet in the evening.", "A painter works on a large canvas.",
    "The stars are bright above the desert.", "The coffee shop on the corner is always busy.",
    "Old friends meet for dinner on Friday.", "The river flows slowly toward the sea.",
    "A child builds a castle in the sand.", "The wind carries the sound of bells.",
    "The village sits between two green hills.", "The musician plays a soft song.",
    "Clouds move slowly across the sky.", "The shop window shows new winter coats.",
    "A narrow bridge leads to the island.", "The doctor visits the town every week.",
    "Morning fog hides the distant hills.", "The bus stops near the town hall.",
    "A family walks through the botanical garden.", "The chef prepares a simple meal.",
    "The path by the lake is lined with trees.", "An old man feeds the pigeons in the park.",
    "The night is cold and still.", "A letter arrives with the morning post.",
    "The workers repair the old stone wall.", "The ship sails out of the harbor at dawn.",
    "Sunlight comes through the open window.", "The choir sings in the small church.",
    "The hikers rest at the top of the hill.", "A warm fire burns in the living room.",
    "The streets are empty after midnight.",
]

# Needle keys: common nouns that never occur in FILLER; the tokenizer learns each as one token.
KEYS = """apple banana cherry grape lemon mango melon peach pear plum orange lime kiwi papaya guava apricot
fig olive tomato carrot potato onion garlic pepper cabbage lettuce spinach celery radish turnip pumpkin squash
bean pea corn rice wheat barley oat walnut almond peanut cashew hazelnut chestnut coconut honey sugar salt
butter cheese yogurt cream milk tiger lion zebra giraffe elephant monkey gorilla panda koala kangaroo rabbit
squirrel beaver otter badger fox wolf bear deer moose camel horse donkey goat sheep cow pig chicken duck goose
turkey swan eagle hawk falcon owl parrot penguin pelican flamingo crow raven robin sparrow dolphin whale shark
salmon trout tuna octopus squid crab lobster shrimp oyster turtle lizard snake frog toad spider beetle ant bee
wasp moth butterfly hammer wrench shovel ladder bucket basket blanket pillow mirror candle lantern compass
anchor helmet jacket sweater scarf glove boot sandal umbrella wallet pencil crayon marker eraser notebook
envelope stamp ticket button zipper needle thread scissors kettle teapot spoon fork knife plate bowl cup jar
bottle barrel crate drum flute violin guitar piano trumpet harp banjo tuba cello rocket satellite planet comet
diamond ruby emerald sapphire pearl silver copper iron marble granite crystal feather pebble acorn cactus
tulip rose daisy lily orchid violet maple oak pine cedar willow birch bamboo""".split()

# Variable names for the variable-tracking task (RULER vt): five upper-case letters, fixed once with seed 6.
def _vt_names(n, seed=6):
    rng, names = random.Random(seed), []
    while len(names) < n:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(5))
        if name not in names:
            names.append(name)
    return names


VT_NAMES = _vt_names(64)

CONTRACT = {
    "version": 1,
    "filler": FILLER,
    "keys": KEYS,
    "value_digits": 6,
    "needle": "The secret code for {key} is {value}.",
    "query_single": "What is the secret code for {key}? The secret code for {key} is",
    "query_multivalue": "What are all the secret codes for {key}? The secret codes for {key} are",
    "query_multiquery": "What are the secret codes for {keys}? The secret codes are",
    "vt_names": VT_NAMES,
    "vt_assign": "VAR {var} = {value}.",
    "vt_copy": "VAR {var} = VAR {src}.",
    "query_vt": "Which variables are assigned the value {value}? Answer: the variables are",
    "answer_separator": ", ",
}


def check_contract(c):
    """Raise ValueError naming the first field that breaks the version-1 schema."""
    if c.get("version") != 1:
        raise ValueError("lcllm_eval.json: version must be 1")
    for name, minimum in (("filler", 50), ("keys", 100), ("vt_names", 50)):
        items = c.get(name)
        if not isinstance(items, list) or len(items) < minimum:
            raise ValueError("lcllm_eval.json: %s needs at least %d entries" % (name, minimum))
        if len(set(items)) != len(items):
            raise ValueError("lcllm_eval.json: %s has duplicates" % name)
    if not isinstance(c.get("value_digits"), int) or c["value_digits"] < 1:
        raise ValueError("lcllm_eval.json: value_digits must be a positive integer")
    for name, fields in (("needle", ("{key}", "{value}")), ("query_single", ("{key}",)),
                         ("query_multivalue", ("{key}",)), ("query_multiquery", ("{keys}",)),
                         ("vt_assign", ("{var}", "{value}")), ("vt_copy", ("{var}", "{src}")),
                         ("query_vt", ("{value}",)), ("answer_separator", ())):
        if not isinstance(c.get(name), str):
            raise ValueError("lcllm_eval.json: %s must be a string" % name)
        for f in fields:
            if f not in c[name]:
                raise ValueError("lcllm_eval.json: %s lacks %s" % (name, f))


def write_contract(path):
    check_contract(CONTRACT)
    with open(path, "w") as f:
        json.dump(CONTRACT, f, indent=1)
        f.write("\n")


def random_value(rng, digits=CONTRACT["value_digits"]):
    """A random integer with exactly `digits` digits, as text."""
    return str(rng.randrange(10 ** (digits - 1), 10 ** digits))


def haystack_sentences(rng, tokenizer, n_tokens):
    """Filler sentences drawn with `rng`, joined with " ", until the haystack has about n_tokens tokens."""
    lengths = {s: len(tokenizer.encode(" " + s, add_special_tokens=False)) for s in FILLER}
    out, total = [], 0
    while total < n_tokens:
        s = rng.choice(FILLER)
        out.append(s)
        total += lengths[s]
    return out


def insert_at_depth(sentences, needle, depth_percent):
    """Insert `needle` as a sentence at the boundary closest to depth_percent of the haystack."""
    k = round(len(sentences) * depth_percent / 100.0)
    return sentences[:k] + [needle] + sentences[k:]


def niah_single_prompt(rng, tokenizer, context_tokens, depth_percent):
    """(prompt text without BOS, expected answer) for single-needle NIAH at one length and depth."""
    key = rng.choice(KEYS)
    value = random_value(rng)
    needle = CONTRACT["needle"].format(key=key, value=value)
    query = CONTRACT["query_single"].format(key=key)
    q_tokens = len(tokenizer.encode(" " + query + " " + value + ".", add_special_tokens=False))
    hay = haystack_sentences(rng, tokenizer, context_tokens - q_tokens -
                             len(tokenizer.encode(" " + needle, add_special_tokens=False)) - 1)
    return " ".join(insert_at_depth(hay, needle, depth_percent)) + " " + query, value


def ruler_prompt(rng, tokenizer, task, context_tokens):
    """(prompt text, expected answer) for niah_multikey / niah_multivalue / niah_multiquery / vt."""
    sep = CONTRACT["answer_separator"]
    keys = rng.sample(KEYS, 4)
    values = [random_value(rng) for _ in keys]
    if task == "niah_multikey":
        needles = [CONTRACT["needle"].format(key=k, value=v) for k, v in zip(keys, values)]
        query, answer = CONTRACT["query_single"].format(key=keys[0]), values[0]
    elif task == "niah_multivalue":
        needles = [CONTRACT["needle"].format(key=keys[0], value=v) for v in values]
        query, answer = CONTRACT["query_multivalue"].format(key=keys[0]), sep.join(values)
    elif task == "niah_multiquery":
        needles = [CONTRACT["needle"].format(key=k, value=v) for k, v in zip(keys, values)]
        order = rng.sample(range(4), 4)
        query = CONTRACT["query_multiquery"].format(keys=sep.join(keys[i] for i in order))
        answer = sep.join(values[i] for i in order)
    elif task == "vt":
        names = rng.sample(VT_NAMES, 5)
        needles = [CONTRACT["vt_assign"].format(var=names[0], value=values[0])]
        needles += [CONTRACT["vt_copy"].format(var=names[i], src=names[i - 1]) for i in range(1, 5)]
        query, answer = CONTRACT["query_vt"].format(value=values[0]), sep.join(names)
    else:
        raise ValueError("unknown task %r" % task)
    used = sum(len(tokenizer.encode(" " + s, add_special_tokens=False)) for s in needles + [query])
    hay = haystack_sentences(rng, tokenizer, context_tokens - used - 8)
    # Needles at sorted random boundaries keep their order of appearance (multivalue and vt answers depend on it).
    spots = sorted(rng.randrange(len(hay) + 1) for _ in needles)
    out, prev = [], 0
    for spot, needle in zip(spots, needles):
        out += hay[prev:spot] + [needle]
        prev = spot
    out += hay[prev:]
    return " ".join(out) + " " + query, answer


def extract_answer(generated):
    """The generated text up to the first ".", newline or EOS, trimmed (niah exact-match scoring)."""
    for stop in (".", "\n"):
        generated = generated.split(stop, 1)[0]
    return generated.strip()
