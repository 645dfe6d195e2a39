#!/usr/bin/env python3
"""Build the embedded default model, models/default/: a tiny random-weight Llama (2 layers, hidden 64) with
the real Llama 2 tokenizer (32000 ids) and the Llama 2 chat format, so `lcllm run models/default --prompt ...`
and `--chat` work end to end on any machine. Its weights are random: the text it writes is noise. Issue E6
replaces it with a trained long-context model.

Usage: python3 tools/make_default_model.py [--out models/default] [--shared ../shared]
Needs torch and transformers (tools/requirements-tools.txt). Deterministic.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM

# The Llama 2 chat format: [INST] ... [/INST], system prompt inside <<SYS>> ... <</SYS>> of the first turn.
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--out", default=os.path.join(root, "models", "default"))
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    args = ap.parse_args()

    torch.manual_seed(20261125)
    config = LlamaConfig(
        vocab_size=32000, hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, rope_theta=10000.0,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
    shutil.rmtree(args.out, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(args.out, safe_serialization=True)
    gen = os.path.join(args.out, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)

    tok_dir = os.path.join(args.shared, "assets", "tokenizers", "llama2")
    shutil.copy(os.path.join(tok_dir, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(tok_dir, "tokenizer_config.json")) as f:
        tok_config = json.load(f)
    tok_config["chat_template"] = LLAMA2_CHAT_TEMPLATE
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tok_config, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write("# models/default\n\nThe embedded default model, made by `tools/make_default_model.py`: a tiny "
                "random-weight Llama\n(2 layers, hidden 64, bf16) with the real Llama 2 tokenizer and chat format. "
                "Its output is noise;\nit exists so the engine runs end to end anywhere. The tokenizer files are "
                "Llama 2's (Meta's\nterms, see ../../../shared/assets/tokenizers/llama2/PACKAGE_LICENSE).\n")
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out}: {sorted(os.listdir(args.out))}, {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
