"""Builds the needle model's small byte-level BPE tokenizer (HF `tokenizers`), trained on the task text itself.

Why not the Llama 2 tokenizer: its 32000 x 256 embedding alone is 16 MB of the model's 25 MB, and it splits a
number into "▁" + one token per digit, so the first answer token is one of 10 digits shared by every value. This
tokenizer keeps every filler word, key and variable name one token and splits numbers into chunks of up to three
digits with the leading space attached (" 123", "456"), so a six-digit value is two tokens out of ~2000. It is
byte-level (any UTF-8 text encodes, nothing maps to <unk>) and adds BOS through its post-processor, so `lcllm` and
transformers read the same tokenizer.json and produce the same ids.
"""
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers, Regex

from needle_contract import CONTRACT

SPECIALS = ["<unk>", "<s>", "</s>"]  # ids 0, 1, 2 as in Llama
# GPT-2's split with digits in runs of at most three (as Llama 3 does) and the space kept on the first run.
SPLIT_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


def _corpus():
    """Every word the task uses, each repeated so BPE merges it into one token, plus all 1-3 digit runs."""
    c = CONTRACT
    texts = []
    for _ in range(4):
        texts += c["filler"]
        texts += [" ".join(c["filler"])]
        for key in c["keys"]:
            texts.append(c["needle"].format(key=key, value="123456"))
            texts.append(c["query_single"].format(key=key) + " 123456.")
            texts.append(c["query_multivalue"].format(key=key) + " 123456, 654321.")
            texts.append(c["query_multiquery"].format(keys=key + ", " + key) + " 123456, 654321.")
            texts.append(key + " " + key.capitalize() + " " + key)
        for var in c["vt_names"]:
            texts.append(c["vt_assign"].format(var=var, value="12345") + " " + c["vt_copy"].format(var=var, src=var))
            texts.append(c["query_vt"].format(value="12345") + " " + var + ", " + var + ".")
    for n in range(1000):
        for s in (str(n), "%02d" % n if n < 100 else None, "%03d" % n):
            if s:
                texts += [s, " " + s, s + ".", " " + s + ","] * 3
    return texts + [" " + t for t in texts]


def build_tokenizer():
    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8192, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 1)])
    return tok


def save_tokenizer(tok, out_dir):
    """tokenizer.json + tokenizer_config.json loadable by transformers' AutoTokenizer and by lcllm."""
    import json, os
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "add_bos_token": True, "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 65536,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
