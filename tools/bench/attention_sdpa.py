"""Peer for tools/bench/bench_attention_cuda: PyTorch SDPA (flash and cuDNN backends) on the same shapes.

Causal GQA prefill (32 query heads, 8 KV heads, head_dim 128, bf16) in TFLOP/s and decode (1 query) in effective
GB/s (K+V bytes / time), plus the card's device-to-device copy rate (read + write bytes / time), the decode floor.
Median of CUDA-event timings after warm-up. One JSON object per line.
    python3 tools/bench/attention_sdpa.py --prefill 8192 32768 --decode 32768 131072 524288 [--head-dim 64]
"""
import argparse
import json

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

H, HKV = 32, 8


def b2b_ms(fn, reps):
    """Mean of `reps` back-to-back calls between two events (host overhead overlapped: kernel time)."""
    fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / reps


def median_ms(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefill", type=int, nargs="*", default=[4096, 8192])
    ap.add_argument("--decode", type=int, nargs="*", default=[32768, 131072])
    ap.add_argument("--head-dim", type=int, default=128, help="64: Llama-3.2-1B, 128: Llama-3.1-8B")
    args = ap.parse_args()
    D = args.head_dim
    name = torch.cuda.get_device_name(0)
    src = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), 20)
    print(json.dumps({"kernel": "torch_copy_1GiB", "card": name, "ms": round(ms, 4),
                      "gbps": round(2.0 * src.numel() / ms / 1e6, 1)}), flush=True)
    del src, dst
    for n in args.prefill:
        q = torch.randn(1, H, n, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, HKV, n, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, HKV, n, D, device="cuda", dtype=torch.bfloat16)
        flops = 4.0 * H * D * n * (n + 1) / 2
        for label, backend in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                    ms = median_ms(fn, 10)
                    mb = b2b_ms(fn, 10)
                print(json.dumps({"kernel": label + "_prefill", "card": name, "head_dim": D, "tokens": n, "ms": round(ms, 3),
                                  "tflops": round(flops / ms / 1e9, 2), "ms_b2b": round(mb, 3),
                                  "tflops_b2b": round(flops / mb / 1e9, 2)}), flush=True)
            except RuntimeError as e:
                print(json.dumps({"kernel": label + "_prefill", "tokens": n, "error": str(e)[:200]}), flush=True)
    for n in args.decode:
        q = torch.randn(1, H, 1, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, HKV, n, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, HKV, n, D, device="cuda", dtype=torch.bfloat16)
        nbytes = 2.0 * n * HKV * D * 2
        for label, backend in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
            try:
                with sdpa_kernel(backend):
                    fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                    ms = median_ms(fn, 50)
                    mb = b2b_ms(fn, 50)
                print(json.dumps({"kernel": label + "_decode", "card": name, "head_dim": D, "context": n, "ms": round(ms, 4),
                                  "gbps": round(nbytes / ms / 1e6, 1), "ms_b2b": round(mb, 4),
                                  "gbps_b2b": round(nbytes / mb / 1e6, 1)}), flush=True)
            except RuntimeError as e:
                print(json.dumps({"kernel": label + "_decode", "context": n, "error": str(e)[:200]}), flush=True)
        del q, k, v


if __name__ == "__main__":
    main()
