#!/usr/bin/env python3
"""Train the needle model: a small Llama (LlamaForCausalLM) that retrieves key-value records from long filler.

Issue E6 part 1. The model learns the synthetic long-context tasks of tools/needle_contract.py (single and
multi-key needles, multiple values, multiple queries, variable tracking) and is saved as a Hugging Face directory
(bf16 safetensors, config.json, generation_config.json, tokenizer.json + tokenizer_config.json, lcllm_eval.json)
that both transformers and `lcllm` load.

Recipe (why, after a first attempt stayed at chance):
- A small byte-level BPE trained on the task text (tools/needle_tokenizer.py): every key is one token and a
  six-digit value is two tokens (" 123" "456") drawn from ~2000, so the first answer token is nearly unique to
  its record and the embedding table is ~2 MB instead of Llama 2's 16 MB.
- The loss is dominated by answer tokens (weight 1; other tokens 0.05 on a random eighth of positions): dense
  queries scattered through every document supervise retrieval at every distance.
- Curriculum by length: train at 256 tokens until whole-answer accuracy is high, then double the length, phase
  by phase, to the final length (>= 16k); each phase ends when the answer accuracy passes --advance-at or its
  time share runs out; the final phase takes the rest of the time budget.
- RoPE theta 500000, head_dim 64, GQA (4 query / 2 KV heads), bf16 autocast + SDPA (flash) on the GPU.

Usage:
  python3 tools/train_needle_model.py --out OUT --minutes 7.2        # GPU, as models/needle was made
  python3 tools/train_needle_model.py --out OUT --family qwen2 --init-from models/needle --phases 20480:1
      --minutes 2.5 --lr 1e-3 --warmup 50       # Qwen2 variant warm-started from models/needle (not run on a GPU yet)
  python3 tools/train_needle_model.py --self-test                    # CPU, seconds: data checks + tiny training
Needs torch, transformers, tokenizers (tools/requirements-tools.txt).
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needle_contract  # noqa: E402
import needle_data  # noqa: E402
import needle_tokenizer  # noqa: E402


# ---------------------------------------------------------------------------------------------------- data workers
class DocumentStream(torch.utils.data.IterableDataset):
    """Endless batches for the current phase; the phase's sequence length is read from a shared value so that
    worker processes follow the curriculum without restarting."""

    def __init__(self, tokenizer_json, seq_len_value, tokens_per_step, seed, task_mix, max_batch):
        self.tokenizer_json, self.seq_len_value = tokenizer_json, seq_len_value
        self.tokens_per_step, self.seed, self.task_mix, self.max_batch = tokens_per_step, seed, task_mix, max_batch

    def __iter__(self):
        from tokenizers import Tokenizer
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        rng = random.Random(self.seed * 1000 + wid)
        tok = Tokenizer.from_file(self.tokenizer_json)
        while True:
            seq_len = self.seq_len_value.value
            batch = max(1, min(self.max_batch, self.tokens_per_step // seq_len))
            ids, w, g, tasks = needle_data.make_batch(tok, rng, batch, seq_len, self.task_mix)
            task_ids = np.array([needle_data.TASKS.index(t) for t in tasks], np.int64)
            yield torch.from_numpy(ids), torch.from_numpy(w), torch.from_numpy(g), torch.from_numpy(task_ids)


# ---------------------------------------------------------------------------------------------------- model
def make_model(args, vocab_size):
    """LlamaForCausalLM (default) or Qwen2ForCausalLM (the same shape plus q/k/v biases), tied embeddings."""
    common = dict(
        vocab_size=vocab_size, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.max_position, rms_norm_eps=1e-5, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=None, initializer_range=0.02,
        rope_parameters={"rope_type": "default", "rope_theta": args.rope_theta},
    )
    family = getattr(args, "family", "llama")
    if family == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM
        config = LlamaConfig(head_dim=args.hidden // args.heads, attention_bias=False, mlp_bias=False, **common)
        model_class = LlamaForCausalLM
    elif family == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM
        config = Qwen2Config(use_sliding_window=False, **common)  # head_dim = hidden / heads
        model_class = Qwen2ForCausalLM
    else:
        raise ValueError("unknown --family %r (llama or qwen2)" % family)
    config._attn_implementation = "sdpa"
    return model_class(config)


def step_loss(model, ids, weights, groups, task_ids, other_fraction, gen):
    """Weighted next-token loss on answer tokens (all) and other tokens (a random fraction), plus metrics.
    ids [B, L+1], weights/groups [B, L], task_ids [G]."""
    inputs, targets = ids[:, :-1], ids[:, 1:]
    hidden = model.model(input_ids=inputs).last_hidden_state            # [B, L, H]
    is_answer = groups >= 0                                             # [B, L]
    keep = is_answer | ((torch.rand(weights.shape, device=weights.device, generator=gen) < other_fraction)
                        & (weights > 0))
    h = hidden[keep]                                                    # [N, H]
    logits = model.lm_head(h).float()                                   # [N, V]
    tgt = targets[keep]                                                 # [N]
    w = weights[keep]                                                   # [N]
    ce = torch.nn.functional.cross_entropy(logits, tgt, reduction="none")
    loss = (ce * w).sum() / w.sum().clamp(min=1e-6)
    with torch.no_grad():
        ans = is_answer[keep]
        correct = (logits.argmax(-1) == tgt) & ans
        g = groups[keep][ans]                                           # [A] group id of each answer token
        n_groups = task_ids.numel()
        wrong = torch.zeros(n_groups, device=ids.device).index_add_(0, g, (~correct[ans]).float())
        seen = torch.zeros(n_groups, device=ids.device).index_add_(0, g, torch.ones_like(g, dtype=torch.float))
        ok = (wrong == 0) & (seen > 0)
        per_task = {}
        for t, name in enumerate(needle_data.TASKS):
            sel = (task_ids == t) & (seen > 0)
            per_task[name] = (ok[sel].float().sum().item(), sel.float().sum().item())
        answer_ce = ce[ans].mean().item() if ans.any() else float("nan")
    return loss, {"answer_ce": answer_ce, "per_task": per_task}


# ---------------------------------------------------------------------------------------------------- training
def parse_phases(spec):
    """'256:0.2,1024:0.15,...' -> [(seq_len, share_of_time)]."""
    out = []
    for part in spec.split(","):
        n, share = part.split(":")
        out.append((int(n), float(share)))
    return out


def train(args):
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    log_path = os.path.join(args.out, "train_log.jsonl")
    log = open(log_path, "a")

    tok = needle_tokenizer.build_tokenizer()
    tok_dir = os.path.join(args.out, "model")
    os.makedirs(tok_dir, exist_ok=True)
    needle_tokenizer.save_tokenizer(tok, tok_dir)
    vocab = tok.get_vocab_size()

    model = make_model(args, vocab).to(device)
    start_phase = 0
    if args.resume:
        state = torch.load(args.resume, map_location="cpu")
        model.load_state_dict({k: v.float() for k, v in state["model"].items()})
        start_phase = state.get("phase", 0)
        print("resumed from %s at phase %d" % (args.resume, start_phase), flush=True)
    if args.init_from:
        # Warm start from another model's safetensors (e.g. the Llama needle model for the Qwen2 variant: the
        # names match and only Qwen2's q/k/v biases are new; they start at zero, so training starts from the
        # Llama model's function and then learns the biases).
        from safetensors.torch import load_file
        path = args.init_from
        if os.path.isdir(path):
            path = os.path.join(path, "model.safetensors")
        weights = {k: v.float() for k, v in load_file(path).items()}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.endswith("lm_head.weight")]
        if unexpected or any(not k.endswith(".bias") for k in missing):
            raise SystemExit("--init-from %s does not fit: missing %s, unexpected %s" % (path, missing, unexpected))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in missing:
                    p.zero_()
        print("initialized from %s (new: %d bias tensors)" % (path, len(missing)), flush=True)
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %d params (%.1f MB bf16), vocab %d" % (n_params, n_params * 2 / 1e6, vocab), flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=(device.type == "cuda"))

    phases = parse_phases(args.phases)
    seq_len_value = torch.multiprocessing.get_context("fork").Value("i", phases[start_phase][0])
    task_mix = tuple(float(x) for x in args.task_mix.split(","))
    stream = DocumentStream(os.path.join(tok_dir, "tokenizer.json"), seq_len_value, args.tokens_per_step,
                            args.seed, task_mix, args.max_batch)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=args.workers,
                                         prefetch_factor=2 if args.workers else None,
                                         persistent_workers=bool(args.workers),
                                         multiprocessing_context="fork" if args.workers else None)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    budget = args.minutes * 60.0
    t0 = time.time()
    phase = start_phase
    phase_start = t0
    phase_budget = phases[phase][1] * budget
    ema = {name: None for name in needle_data.TASKS}
    step, history = 0, []
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    it = iter(loader)
    tokens_seen = 0
    last_ckpt = time.time()
    while True:
        elapsed = time.time() - t0
        if elapsed >= budget or (args.max_steps and step >= args.max_steps):
            break
        ids, w, g, task_ids = (x.to(device, non_blocking=True) for x in next(it))
        if ids.shape[1] - 1 != phases[phase][0]:
            continue  # a batch prefetched for the previous phase
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        if frac > 1.0 - args.decay_share:
            lr *= max(0.05, (1.0 - frac) / args.decay_share)
        for group in opt.param_groups:
            group["lr"] = lr
        with autocast:
            loss, m = step_loss(model, ids, w, g, task_ids, args.other_fraction, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens_seen += ids.numel()
        for name, (ok, n) in m["per_task"].items():
            if n > 0:
                acc = ok / n
                ema[name] = acc if ema[name] is None else 0.9 * ema[name] + 0.1 * acc
        if step % args.log_every == 0:
            rec = {"step": step, "time_s": round(time.time() - t0, 1), "seq_len": phases[phase][0],
                   "batch": ids.shape[0], "lr": lr, "loss": round(loss.item(), 4),
                   "answer_ce": round(m["answer_ce"], 4), "tokens": tokens_seen,
                   "acc": {k: (round(v, 3) if v is not None else None) for k, v in ema.items()}}
            history.append(rec)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if step % (args.log_every * args.print_every) == 0:
                print(json.dumps(rec), flush=True)
        if args.ckpt_every_s and time.time() - last_ckpt > args.ckpt_every_s:
            save_checkpoint(model, phase, args.ckpt or os.path.join(args.out, "ckpt.pt"))
            last_ckpt = time.time()
        # Next phase: once single-needle answers are right often enough, or the phase's time share is spent.
        in_phase = time.time() - phase_start
        if phase + 1 < len(phases) and (
                (ema["single"] is not None and ema["single"] >= args.advance_at and in_phase > args.min_phase_s)
                or in_phase >= phase_budget):
            phase += 1
            seq_len_value.value = phases[phase][0]
            phase_start = time.time()
            phase_budget = phases[phase][1] * budget
            ema = {name: None for name in needle_data.TASKS}
            msg = {"step": step, "time_s": round(time.time() - t0, 1), "phase": phase, "seq_len": phases[phase][0]}
            log.write(json.dumps(msg) + "\n")
            print(json.dumps(msg), flush=True)
    train_s = time.time() - t0
    return model, tok, tok_dir, {"steps": step, "train_seconds": round(train_s, 1), "tokens": tokens_seen,
                                 "final_phase": phase, "phases": phases, "history": history,
                                 "params": n_params, "vocab": vocab}


def save_model(model, tok_dir, args, report):
    """The Hugging Face directory: bf16 safetensors + configs + tokenizer + lcllm_eval.json + training report."""
    from transformers import GenerationConfig
    model = model.to("cpu", torch.bfloat16).eval()
    model.config.use_cache = True
    model.save_pretrained(tok_dir, safe_serialization=True)
    GenerationConfig(bos_token_id=1, eos_token_id=2, do_sample=False, max_new_tokens=32).save_pretrained(tok_dir)
    needle_contract.write_contract(os.path.join(tok_dir, "lcllm_eval.json"))
    report = dict(report, args=vars(args))
    with open(os.path.join(args.out, "training_report.json"), "w") as f:
        json.dump(report, f, indent=1)
    save_checkpoint(model, report["final_phase"], args.ckpt or os.path.join(args.out, "ckpt.pt"))


def save_checkpoint(model, phase, path):
    """bf16 weights and the curriculum phase (small enough to come back from the GPU machine)."""
    torch.save({"model": {k: v.detach().to("cpu", torch.bfloat16) for k, v in model.state_dict().items()},
                "phase": phase}, path + ".tmp")
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------------------------------------------- self-test
def self_test():
    """Seconds on the CPU: the tokenizer and the training data say what the contract says, and a tiny model's
    answer loss falls. Exits non-zero on the first failure."""
    tok = needle_tokenizer.build_tokenizer()
    c = needle_contract.CONTRACT
    needle_contract.check_contract(c)

    def pieces(text):
        return tok.encode(text, add_special_tokens=False).tokens

    for key in c["keys"]:
        assert len(pieces(" " + key)) == 1, "key %r is not one token" % key
    for var in c["vt_names"]:
        assert len(pieces(" " + var)) == 1, "variable %r is not one token" % var
    rng = random.Random(0)
    for _ in range(200):
        v = needle_contract.random_value(rng)
        assert len(v) == c["value_digits"] and v[0] != "0"
        assert pieces(" " + v + ".") == ["Ġ" + v[:3], v[3:], "."], "value %s splits as %s" % (v, pieces(" " + v))
    # A needle tokenizes the same inside a haystack as alone, and the query ends right before the answer.
    needle = c["needle"].format(key="apple", value="123456")
    query = c["query_single"].format(key="apple")
    text = "The grass is green. " + needle + " The sky is blue today. " + query + " 123456."
    toks = pieces(text)
    assert toks[:5] == ["The", "Ġgrass", "Ġis", "Ġgreen", "."], toks[:5]
    assert pieces(" " + needle) == toks[5:5 + len(pieces(" " + needle))]
    assert toks[-3:] == ["Ġ123", "456", "."], toks[-3:]
    assert tok.encode("x").ids[0] == 1, "BOS is not added"
    assert not any(ch.isdigit() for s in c["filler"] for ch in s), "filler has digits"
    # Every answer span in generated documents decodes to " " + answer + "." at the supervised positions.
    for seq_len, mix in ((256, (0.7, 0.1, 0.1, 0.1)), (1024, (0.25, 0.25, 0.25, 0.25))):
        ids, w, g, tasks = needle_data.make_batch(tok, rng, 4, seq_len, mix)
        texts = []
        for b in range(4):
            for gid in np.unique(g[b][g[b] >= 0]):
                pos = np.nonzero(g[b] == gid)[0]
                texts.append((tasks[gid], tok.decode(ids[b][pos + 1].tolist())))
                assert np.all(np.diff(pos) == 1), "answer tokens not contiguous"
                assert np.all(w[b][pos] == needle_data.W_ANSWER)
        assert len(texts) >= 2, "too few answers in a batch"
        for task, t in texts:
            assert t.startswith(" ") and t.endswith("."), (task, t)
            body = t[1:-1]
            if task in ("single",):
                assert body.isdigit() and len(body) == c["value_digits"], t
            elif task in ("multivalue", "multiquery"):
                assert all(x.isdigit() for x in body.split(c["answer_separator"])), t
            else:
                assert all(x in c["vt_names"] for x in body.split(c["answer_separator"])), t
        assert {task for task, _ in texts} >= ({"single"} if seq_len == 256 else set(needle_data.TASKS)), texts
    # The answer of every document is retrievable from the text: check the needle facts behind 50 answers.
    for _ in range(50):
        doc, answers = needle_data.build_document(rng, 400)
        for a0, a1, task, answer in answers:
            before = doc[:a0]
            if task == "single":
                key = before.rsplit("secret code for ", 1)[1].split(" is")[0]
                assert c["needle"].format(key=key, value=answer) in before
    # A tiny model learns something: its answer loss falls on the CPU in a few seconds.
    args = argparse.Namespace(hidden=64, intermediate=128, layers=2, heads=2, kv_heads=1, max_position=4096,
                              rope_theta=500000.0)
    torch.manual_seed(0)
    model = make_model(args, tok.get_vocab_size())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    ces = []
    for step in range(40):
        ids, w, g, tasks = needle_data.make_batch(tok, rng, 8, 128, (1.0, 0, 0, 0))
        task_ids = torch.tensor([needle_data.TASKS.index(t) for t in tasks])
        loss, m = step_loss(model, torch.from_numpy(ids), torch.from_numpy(w), torch.from_numpy(g), task_ids,
                            0.125, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ces.append(m["answer_ce"])
    first, last = sum(ces[:3]) / 3, sum(ces[-5:]) / 5
    assert last < first - 1.0, "answer loss did not fall: %.2f -> %.2f" % (first, last)
    print("self-test passed: tokenizer, %d-answer data checks, answer loss %.2f -> %.2f" % (len(texts), first, last))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output folder: model/ (the HF directory), train_log.jsonl, ckpt.pt")
    ap.add_argument("--self-test", action="store_true", help="run the CPU sanity checks and exit")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device (default: cuda when available)")
    ap.add_argument("--seed", type=int, default=6, help="seed of the model init, the data workers and the loss sampling")
    ap.add_argument("--minutes", type=float, default=7.2, help="training time budget")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = time budget only)")
    ap.add_argument("--phases", default="256:0.15,512:0.1,1024:0.1,2048:0.1,4096:0.1,8192:0.1,20480:1.0",
                    help="curriculum: seq_len:max share of the time budget, comma-separated; the last runs to the end")
    ap.add_argument("--advance-at", type=float, default=0.95, help="single-needle answer accuracy to advance")
    ap.add_argument("--min-phase-s", type=float, default=10.0, help="least seconds in a phase")
    ap.add_argument("--tokens-per-step", type=int, default=65536, help="batch size in tokens (batch = this / seq_len)")
    ap.add_argument("--max-batch", type=int, default=256, help="most documents in a batch")
    ap.add_argument("--task-mix", default="0.6,0.15,0.1,0.15", help="single,multivalue,multiquery,vt weights")
    ap.add_argument("--other-fraction", type=float, default=0.125, help="share of non-answer positions in the loss")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate")
    ap.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    ap.add_argument("--decay-share", type=float, default=0.15, help="final share of time with linear lr decay")
    ap.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay of matrices")
    ap.add_argument("--workers", type=int, default=min(12, os.cpu_count() or 1), help="data-generating processes")
    ap.add_argument("--log-every", type=int, default=20, help="steps between train_log.jsonl records")
    ap.add_argument("--print-every", type=int, default=10, help="log records between printed ones")
    ap.add_argument("--ckpt-every-s", type=float, default=90.0, help="seconds between checkpoints (0 = only at the end)")
    ap.add_argument("--family", default="llama", choices=["llama", "qwen2"], help="model family")
    ap.add_argument("--hidden", type=int, default=256, help="hidden size")
    ap.add_argument("--intermediate", type=int, default=1024, help="MLP size")
    ap.add_argument("--layers", type=int, default=4, help="decoder layers")
    ap.add_argument("--heads", type=int, default=4, help="query heads (head_dim = hidden / heads)")
    ap.add_argument("--kv-heads", type=int, default=2, help="key/value heads (GQA)")
    ap.add_argument("--rope-theta", type=float, default=500000.0, help="RoPE base")
    ap.add_argument("--max-position", type=int, default=32768, help="max_position_embeddings in config.json")
    ap.add_argument("--init-from", help="warm start: a model directory or .safetensors with matching names "
                    "(missing biases start at zero)")
    ap.add_argument("--ckpt", help="checkpoint path (default OUT/ckpt.pt)")
    ap.add_argument("--resume", help="ckpt.pt of an earlier run (weights only; the optimizer starts fresh)")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.out:
        ap.error("--out is required")
    model, tok, tok_dir, report = train(args)
    save_model(model, tok_dir, args, report)
    print("saved %s after %d steps, %.0f s" % (tok_dir, report["steps"], report["train_seconds"]), flush=True)


if __name__ == "__main__":
    main()
