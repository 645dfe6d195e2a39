#!/usr/bin/env python3
"""The end-to-end peer of `lcllm bench`: Hugging Face transformers on the same model shape, same lengths, same card.

Random bf16 weights built on the GPU from a config.json (configs/models/), SDPA attention (eager where the model
needs it: Gemma 2's logit softcap), batch 1. Prefill: one forward over the prompt with `logits_to_keep=1`
(time to first token). Decode: a DynamicCache filled with random K/V of the context length (as lcllm's bench leaves
the context uncomputed), then greedy steps of one token — what `generate()` does per token, without its sampling
overhead. Writes JSON shaped like `lcllm bench --json`.

    python3 tools/bench/e2e_transformers.py configs/models/llama-3.1-8b.json --prefill 4k,32k --decode 4k,32k \
        --decode-steps 32 --json out.json
"""
import argparse
import datetime
import json
import sys
import time


def token_counts(text):
    out = []
    for item in text.split(","):
        item = item.strip().lower()
        mult = 1024 if item.endswith("k") else 1024 * 1024 if item.endswith("m") else 1
        out.append(int(item.rstrip("km")) * mult)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--prefill", default="4k")
    ap.add_argument("--decode", default="4k")
    ap.add_argument("--decode-steps", type=int, default=32)
    ap.add_argument("--json", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of this script")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, DynamicCache

    with open(args.config) as f:
        cfg_dict = json.load(f)
    model_type = cfg_dict.pop("model_type")
    cfg = AutoConfig.for_model(model_type, **cfg_dict)
    attn = "eager" if getattr(cfg, "attn_logit_softcapping", None) else "sdpa"
    torch.manual_seed(args.seed)
    with torch.device(args.device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16, attn_implementation=attn)
    model.eval()
    vocab = cfg.vocab_size
    out = {
        "engine": "transformers " + transformers.__version__ + " (torch " + torch.__version__ + ", " + attn + ")",
        "card": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
        "date": datetime.date.today().isoformat(),
        "command": "python3 " + " ".join(sys.argv),
        "model": args.config,
        "weight_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "prefill": [],
        "decode": [],
    }
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    with torch.no_grad():
        model(torch.randint(vocab, (1, 256), device=args.device), logits_to_keep=1)  # warm-up
        for n in token_counts(args.prefill):
            ids = torch.randint(vocab, (1, n), device=args.device)
            try:
                sync()
                t0 = time.perf_counter()
                logits = model(ids, use_cache=True, logits_to_keep=1).logits
                logits.float().cpu()
                s = time.perf_counter() - t0
                out["prefill"].append({"tokens": n, "seconds": s, "tokens_per_s": n / s, "ttft_s": s})
                print(f"prefill {n}: {n / s:.0f} tokens/s, TTFT {s:.3f} s", flush=True)
            except torch.OutOfMemoryError as e:
                out["prefill"].append({"tokens": n, "error": "out of memory: " + str(e).split("\n")[0]})
                print(f"prefill {n}: out of memory", flush=True)
            del ids
            if args.device == "cuda":
                torch.cuda.empty_cache()

        n_kv = cfg.num_key_value_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        for n in token_counts(args.decode):
            try:
                cache = DynamicCache(config=model.config)
                for layer in range(cfg.num_hidden_layers):
                    k = torch.randn(1, n_kv, n - 1, head_dim, device=args.device, dtype=torch.bfloat16)
                    cache.update(k, k.clone(), layer)
                    del k
                tok = torch.randint(vocab, (1, 1), device=args.device)
                pos = n - 1
                logits = model(tok, past_key_values=cache, use_cache=True,
                               cache_position=torch.tensor([pos], device=args.device), logits_to_keep=1).logits
                sync()
                t0 = time.perf_counter()
                for i in range(args.decode_steps):
                    pos += 1
                    tok = logits[:, -1:].argmax(-1)
                    logits = model(tok, past_key_values=cache, use_cache=True,
                                   cache_position=torch.tensor([pos], device=args.device), logits_to_keep=1).logits
                    tok.item()  # the token reaches the host each step, as a server must
                sync()
                ms = (time.perf_counter() - t0) * 1e3 / args.decode_steps
                out["decode"].append({"context": n, "ms_per_token": ms, "tokens_per_s": 1e3 / ms})
                print(f"decode at {n}: {ms:.3f} ms/token", flush=True)
                del cache, logits
            except torch.OutOfMemoryError as e:
                out["decode"].append({"context": n, "error": "out of memory: " + str(e).split("\n")[0]})
                print(f"decode at {n}: out of memory", flush=True)
            if args.device == "cuda":
                torch.cuda.empty_cache()
    if args.device == "cuda":
        out["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated()
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
