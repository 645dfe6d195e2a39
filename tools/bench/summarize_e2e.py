#!/usr/bin/env python3
"""Joins lcllm_<model>.json and hf_<model>.json from tools/bench/run_e2e_bench.sh into OUT/e2e.json and a markdown
table OUT/e2e.md: prefill tokens/s, time to first token and decode ms/token per length, each with its floor (the
copy bandwidth and bf16 GEMM rate lcllm measured in the same run) and transformers' number on the same shape."""
import json
import pathlib
import sys


def fmt_len(n):
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def main():
    out_dir = pathlib.Path(sys.argv[1])
    env = (out_dir / "e2e_env.txt").read_text() if (out_dir / "e2e_env.txt").exists() else ""
    models, rows = {}, []
    for path in sorted(out_dir.glob("lcllm_*.json")):
        name = path.stem[len("lcllm_"):]
        ours = json.loads(path.read_text())
        hf_path = out_dir / f"hf_{name}.json"
        peer = json.loads(hf_path.read_text()) if hf_path.exists() else {"prefill": [], "decode": []}
        models[name] = {"lcllm": ours, "transformers": peer}
        hf_pre = {p["tokens"]: p for p in peer.get("prefill", [])}
        hf_dec = {d["context"]: d for d in peer.get("decode", [])}
        # A bench run with several policies has a row per policy; the policy joins the model's name past `full`.
        label = lambda r: name if r.get("policy", "full") == "full" else f"{name} {r['policy']}"
        for p in ours["prefill"]:
            h = hf_pre.get(p["tokens"], {})
            rows.append(("prefill", label(p), p["tokens"], p, h))
        for d in ours["decode"]:
            h = hf_dec.get(d["context"], {})
            rows.append(("decode", label(d), d["context"], d, h))
    first = next(iter(models.values()))["lcllm"] if models else {}
    lines = [f"card: {first.get('card', '?')}; copy {first.get('copy_gbps', 0):.0f} GB/s, bf16 GEMM "
             f"{first.get('gemm_tflops', 0):.0f} TFLOP/s (measured by each lcllm bench run; first shown)", "",
             "| model | prompt | lcllm tokens/s | TTFT s | floor s | of floor | transformers tokens/s | TTFT s | lcllm / transformers |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, name, n, p, h in rows:
        if kind != "prefill":
            continue
        hs = h.get("ttft_s")
        lines.append(f"| {name} | {fmt_len(n)} | {p['tokens_per_s']:.0f} | {p['ttft_s']:.3f} | {p['floor_s']:.3f} | "
                     f"{100 * p['fraction_of_floor']:.0f}% | "
                     + (f"{h['tokens_per_s']:.0f} | {hs:.3f} | {hs / p['ttft_s']:.2f}x |" if hs else
                        f"{h.get('error', 'not run')} | | |"))
    lines += ["", "| model | context | lcllm ms/token | floor ms | of floor | transformers ms/token | lcllm / transformers |",
              "|---|---|---|---|---|---|---|"]
    for kind, name, n, d, h in rows:
        if kind != "decode":
            continue
        hm = h.get("ms_per_token")
        lines.append(f"| {name} | {fmt_len(n)} | {d['ms_per_token']:.2f} | {d['floor_ms']:.2f} | "
                     f"{100 * d['fraction_of_floor']:.0f}% | "
                     + (f"{hm:.2f} | {hm / d['ms_per_token']:.2f}x |" if hm else f"{h.get('error', 'not run')} | |"))
    (out_dir / "e2e.md").write_text("\n".join(lines) + "\n")
    (out_dir / "e2e.json").write_text(json.dumps({"env": env, "models": models}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
