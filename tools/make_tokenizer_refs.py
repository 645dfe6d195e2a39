#!/usr/bin/env python3
"""Reference token ids for the tokenizer tests (tests/fixtures/tokenizer/<name>.jsonl).

For each real tokenizer under ../shared/assets/tokenizers/ this script builds the same deterministic corpus
(seeded; >= 2000 strings: prose, code, numbers, whitespace runs, CJK, Arabic, Devanagari, Cyrillic, emoji with
ZWJ and skin tones, combining marks in NFC and NFD, special-token text inside user text, very long words, the
empty string, random Unicode) and writes one JSON object per line:

  {"text": s, "ids": encode(s, add_special_tokens=False), "ids_special": encode(s, add_special_tokens=True),
   "decoded": decode(ids, skip_special_tokens=False), "roundtrip": decoded == s}
  plus "decoded_skip" (decode(ids_special, skip_special_tokens=True)) when it differs from "decoded",
  and for llama2 (which also ships tokenizer.model) "spm_ids" / "spm_decoded" from the `sentencepiece` package.

Needs: pip install tokenizers sentencepiece.   Usage: python3 tools/make_tokenizer_refs.py [--check]

`--unicode-tables` instead regenerates src/tokenizer/unicode_nfc_data.cpp (canonical combining classes,
canonical decompositions and primary composites, from Python's unicodedata) used by the NFC normalizer.
"""
import argparse
import json
import os
import random
import sys
import unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ASSETS = os.path.join(ROOT, "..", "shared", "assets", "tokenizers")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
NAMES = ["llama2", "llama3", "qwen3", "gemma3"]
SEED = 20261125

WORDS = ("the of and to in is that it was for on are as with his they at be this from have or by one had not but "
         "what all were when we there can an your which their said if do will each about how up out them then she "
         "many some so these would other into has more her two like him see time could no make than first been "
         "its who now people my made over did down only way find use may water long little very after words called "
         "just where most know get through back much before go good new write our used me man too any day same "
         "right look think also around another came come work three word must because does part even place well "
         "such here take why things help put years different away again off went old number great tell men say "
         "small every found still between name should home big give air line set own under read last never us "
         "left end along while might next sound below saw something thought both few those always looked show "
         "large often together asked house don't world going want school important until form food keep children "
         "feet land side without boy once animals life enough took sometimes four head above kind began almost "
         "live page got earth need far hand high year mother light parts country father let night following "
         "picture being study second eyes soon times story boys since white days ever paper hard near sentence "
         "better best across during today others however sure means knew it's try told young miles sun ways thing "
         "whole hear example heard several change answer room sea against top turned learn point city play toward "
         "five using himself usually money seen didn't car morning I'm body upon family later turn move face door "
         "cut done group true leave color red friends pretty eat front feel fact hands week eight").split()
CONTRACTIONS = ["don't", "I'll", "you're", "we've", "she'd", "HE'S", "It'S", "THEY'RE", "I'M", "we'LL", "can't",
                "o'clock", "rock'n'roll", "'tis", "y'all"]
CODE = [
    "def f(x):\n    return x * 2\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "#include <stdio.h>\nint main(void) { printf(\"hi\\n\"); return 0; }\n",
    "const x = {a: 1, b: [2, 3], c: 'str'};\r\nconsole.log(x?.a ?? 0);\r\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "    if (a && b || !c) { x <<= 2; y >>= 3; z ^= 0xFF; }",
    "fn main() -> Result<(), Box<dyn Error>> {\n    let v: Vec<u8> = vec![1,2,3];\n    Ok(())\n}",
    "<div class=\"row\"><span>text</span></div>\n<table><tr><td>1</td></tr></table>",
    "import numpy as np\narr = np.zeros((3, 4), dtype=np.float32)\t# comment\n",
    "x=1;y=2\n\n\n\nz=3    \n\t\t\tw=4",
    "   def __init__(self, *args, **kwargs):\n        super().__init__(*args, **kwargs)",
    "$ ls -la /usr/local/bin | grep -E '^d' > out.txt 2>&1",
    "{\"key\": [true, false, null, 1.5e-10, \"\\u00e9\"]}",
    "// TODO(alice): fix the off-by-one in buf[len-1]",
    "a_b_c = snake_case_name + CamelCaseName - kConstant;",
]
SPECIALS = ["<|eot_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
            "<|reserved_special_token_5|>", "<start_of_turn>", "<end_of_turn>", "<|im_start|>", "<|im_end|>",
            "<|endoftext|>", "<s>", "</s>", "<unk>", "<bos>", "<eos>", "<pad>", "<mask>", "<think>", "</think>",
            "<tool_call>", "<table>", "</td>", "<unused12>", "<start_of_image>", "<|fim_prefix|>", "<|eot_id",
            "<|im_start", "<s", "<|", "|>", "<<s>>", "<s><s>", "[multimodal]", "<image_soft_token>"]
EMOJI = ["😀", "👍", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇸", "🇯🇵", "❤️", "🧑🏾‍💻", "👩‍❤️‍💋‍👨", "🤷🏻‍♀️",
         "🐈‍⬛", "✋🏼", "🫠", "🦀", "🔥", "💯", "🙏", "😂", "🤖", "🧪", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "☕", "⚡"]
ACCENTED = ["café", "naïve", "résumé", "Ångström", "jalapeño", "Đặng Thị Ngọc Thịnh", "tiếng Việt", "façade",
            "über", "Zürich", "crème brûlée", "São Paulo", "Kraków", "ǅemal", "ﬁne", "Å", "ḱ", "q̇", "ệ", "ṩ"]
CYRILLIC = "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет мир! Ёлка и йогурт."
ARABIC = "مرحبا بالعالم! هذه جملة عربية للاختبار، مع أرقام ٠١٢٣٤٥٦٧٨٩ وتشكيل: بِسْمِ اللَّهِ"
DEVANAGARI = "नमस्ते दुनिया! यह एक परीक्षण वाक्य है। क्षत्रिय ज्ञान श्री ०१२३४५६७८९"
CJK = "我爱自然语言处理。今天天气很好，我们去公园吧！日本語のテキストです。カタカナとひらがな。한국어 문장입니다."
OTHER = ["Ελληνικά γράμματα", "עברית טקסט", "ภาษาไทย", "ქართული", "Հայերեն", "ᚠᚢᚦᚨᚱᚲ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
         "𝕳𝖊𝖑𝖑𝖔", "ｆｕｌｌ　ｗｉｄｔｈ", "①②③", "Ⅻ", "½ ¾ ⅞", "™ © ®", "€100 £50 ¥1000 ₹", "ﷺ", "ﬀ"]
WS = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \t ", "\u00a0", "\u3000",
      "\u2009", "\u200b", "\v", "\f", "\u0085", "\u2028", "    ", "        ", "\n\n\n\n", "\t \t"]


def rand_assigned_char(rng):
    while True:
        r = rng.random()
        if r < 0.5:
            cp = rng.randrange(0x20, 0x3000)
        elif r < 0.8:
            cp = rng.randrange(0x3000, 0x10000)
        else:
            cp = rng.randrange(0x10000, 0x30000)
        c = chr(cp)
        if unicodedata.category(c) in ("Cn", "Cs", "Co"):
            continue
        return c


def prose(rng, n):
    out = []
    for i in range(n):
        w = rng.choice(WORDS) if rng.random() > 0.08 else rng.choice(CONTRACTIONS)
        if i == 0 or out[-1].endswith("."):
            w = w[:1].upper() + w[1:]
        out.append(w)
        if rng.random() < 0.08:
            out[-1] += rng.choice([",", ".", ";", ":", "!", "?", "...", " -", "\""])
    return " ".join(out)


def build_corpus():
    rng = random.Random(SEED)
    c = ["", " ", "  ", "\n", "\t", "a", "A", "0", ".", "hello", " hello", "hello ", "Hello world", "\r\n",
         "I'm", "'s", "ﬁ", "\u00e9", "e\u0301", "\u00a0", "\u200d", "\ufeff", "\x00", "\x7f", "\ufffd"]
    for _ in range(300):  # English prose
        c.append(prose(rng, rng.randint(1, 40)))
    for _ in range(150):  # code
        parts = rng.sample(CODE, rng.randint(1, 3))
        s = "".join(parts)
        if rng.random() < 0.3:
            s = s.replace("    ", "\t")
        c.append(s)
    for _ in range(150):  # numbers and digit runs
        k = rng.randint(0, 5)
        if k == 0:
            s = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40)))
        elif k == 1:
            s = f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
        elif k == 2:
            s = f"{rng.randint(0, 10**12):,}"
        elif k == 3:
            s = f"call +1 ({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)} at 10:{rng.randint(10, 59)}pm"
        elif k == 4:
            s = " ".join(str(rng.randint(0, 10**rng.randint(1, 9))) for _ in range(rng.randint(1, 12)))
        else:
            s = f"v{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(0, 999)} 1e{rng.randint(-30, 30)} 0x{rng.randint(0, 2**32):X} 3.14159"
        c.append(s)
    for _ in range(200):  # whitespace runs, tabs, CRLF, trailing spaces
        parts = []
        for _ in range(rng.randint(1, 10)):
            parts.append(rng.choice(WS) * rng.randint(1, 3))
            if rng.random() < 0.7:
                parts.append(rng.choice(WORDS))
        c.append("".join(parts))
    scripts = [CYRILLIC, ARABIC, DEVANAGARI, CJK] + OTHER
    for _ in range(250):  # non-Latin scripts
        src = rng.choice(scripts)
        a = rng.randrange(0, len(src))
        b = min(len(src), a + rng.randint(1, 40))
        s = src[a:b]
        if rng.random() < 0.3:
            s = prose(rng, rng.randint(1, 5)) + " " + s
        c.append(s)
    for _ in range(150):  # emoji with ZWJ and skin tones
        c.append("".join(rng.choice(EMOJI + [" ", "ok ", "!", "\n"]) for _ in range(rng.randint(1, 10))))
    for _ in range(150):  # combining marks, NFC and NFD
        words = [rng.choice(ACCENTED) for _ in range(rng.randint(1, 5))]
        s = " ".join(words)
        form = rng.choice(["NFC", "NFD", "NFKC", "NFKD", None])
        if form:
            s = unicodedata.normalize(form, s)
        if rng.random() < 0.3:
            s += "".join(chr(rng.randrange(0x300, 0x370)) for _ in range(rng.randint(1, 4)))
        c.append(s)
    for _ in range(250):  # special-token text inside user text
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.4:
                parts.append(rng.choice(SPECIALS))
            elif r < 0.8:
                parts.append(prose(rng, rng.randint(1, 4)))
            else:
                parts.append(rng.choice(WS))
        c.append(rng.choice(["", " "]).join(parts))
    for _ in range(40):  # very long words
        k = rng.randint(0, 4)
        n = rng.randint(100, 3000)
        if k == 0:
            s = rng.choice("ab") * n
        elif k == 1:
            s = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
        elif k == 2:
            s = "".join(rng.choice("0123456789") for _ in range(n))
        elif k == 3:
            s = "https://example.com/" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-_") for _ in range(n))
        else:
            s = rng.choice(["▁", " ", "\n", "\t", "=", "😀", "我"]) * rng.randint(50, 400)
        c.append(s)
    for _ in range(250):  # random Unicode (assigned code points) mixed with ASCII
        n = rng.randint(1, 30)
        c.append("".join(rand_assigned_char(rng) if rng.random() < 0.7 else chr(rng.randrange(0x20, 0x7f))
                         for _ in range(n)))
    for _ in range(100):  # mixed bag of everything
        c.append(" ".join(rng.choice([prose(rng, 3), rng.choice(CODE), rng.choice(EMOJI), rng.choice(SPECIALS),
                                      rng.choice(ACCENTED), rng.choice(WS), rng.choice(OTHER)])
                          for _ in range(rng.randint(2, 8))))
    return c


def write_refs(check):
    from tokenizers import Tokenizer
    corpus = build_corpus()
    os.makedirs(OUT, exist_ok=True)
    for name in NAMES:
        tok = Tokenizer.from_file(os.path.join(ASSETS, name, "tokenizer.json"))
        sp = None
        if name == "llama2":
            import sentencepiece
            sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(ASSETS, name, "tokenizer.model"))
        lines = []
        n_rt = 0
        for s in corpus:
            ids = tok.encode(s, add_special_tokens=False).ids
            ids_sp = tok.encode(s, add_special_tokens=True).ids
            dec = tok.decode(ids, skip_special_tokens=False)
            rec = {"text": s, "ids": ids, "ids_special": ids_sp, "decoded": dec, "roundtrip": dec == s}
            n_rt += dec == s
            dskip = tok.decode(ids_sp, skip_special_tokens=True)
            if dskip != dec:
                rec["decoded_skip"] = dskip
            if sp is not None:
                sids = sp.encode(s)
                rec["spm_ids"] = sids
                rec["spm_decoded"] = sp.decode(sids)
            lines.append(json.dumps(rec, ensure_ascii=False))
        path = os.path.join(OUT, name + ".jsonl")
        data = "\n".join(lines) + "\n"
        if check:
            with open(path, encoding="utf-8") as f:
                if f.read() != data:
                    sys.exit(f"{path} is out of date; rerun tools/make_tokenizer_refs.py")
        else:
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(data)
        print(f"{name}: {len(corpus)} strings, {n_rt} round-trip, {len(data.encode()) // 1024} KiB -> {path}")


def write_unicode_tables():
    ccc, decomp, comp = [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        k = unicodedata.combining(ch)
        if k:
            ccc.append((cp, k))
        d = unicodedata.decomposition(ch)
        if d and not d.startswith("<"):
            parts = [int(x, 16) for x in d.split()]
            decomp.append((cp, parts[0], parts[1] if len(parts) > 1 else 0))
            if len(parts) == 2 and unicodedata.normalize("NFC", ch) == ch:
                comp.append(((parts[0] << 21) | parts[1], cp))
    comp.sort()
    path = os.path.join(ROOT, "src", "tokenizer", "unicode_nfc_data.cpp")
    with open(path, "w") as f:
        f.write("// Generated by tools/make_tokenizer_refs.py --unicode-tables from Python's unicodedata "
                f"(Unicode {unicodedata.unidata_version}). Do not edit.\n")
        f.write('#include "tokenizer/unicode_nfc_data.h"\n\nnamespace lcllm::unicode_data {\n\n')
        f.write(f"const CccEntry kCcc[{len(ccc)}] = {{\n")
        for i in range(0, len(ccc), 8):
            f.write("  " + " ".join(f"{{0x{a:X}, {b}}}," for a, b in ccc[i:i + 8]) + "\n")
        f.write("};\n")
        f.write(f"const std::size_t kCccCount = {len(ccc)};\n\n")
        f.write(f"const DecompEntry kDecomp[{len(decomp)}] = {{\n")
        for i in range(0, len(decomp), 6):
            f.write("  " + " ".join(f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in decomp[i:i + 6]) + "\n")
        f.write("};\n")
        f.write(f"const std::size_t kDecompCount = {len(decomp)};\n\n")
        f.write(f"const CompEntry kComp[{len(comp)}] = {{\n")
        for i in range(0, len(comp), 6):
            f.write("  " + " ".join(f"{{0x{a:X}ULL, 0x{b:X}}}," for a, b in comp[i:i + 6]) + "\n")
        f.write("};\n")
        f.write(f"const std::size_t kCompCount = {len(comp)};\n\n}}  // namespace lcllm::unicode_data\n")
    print(f"wrote {path}: {len(ccc)} ccc, {len(decomp)} decompositions, {len(comp)} compositions")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if the committed references are out of date")
    ap.add_argument("--unicode-tables", action="store_true", help="regenerate src/tokenizer/unicode_nfc_data.cpp")
    a = ap.parse_args()
    if a.unicode_tables:
        write_unicode_tables()
    else:
        write_refs(a.check)
