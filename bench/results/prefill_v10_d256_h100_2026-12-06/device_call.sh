# Session 18 call A: HEAD + v10 (d256 patch) + poly exps at d 64 (kPolyExpEvery 4) + int fp8 convert, against HEAD's
# build (base_head): kernels with the SDPA peer; d 64 bf16 of the base; sanitizers; whole suite; Gemma 3 4B end to end
DIMS="256 64 128" SDPA=1 ONLY=kernels bash tools/bench/run_fp8_prefill_check.sh head
source tools/bench/gpu_dist_env.sh; R=$OUT/fp8p/variants; mkdir -p $R
{ hdr "prefill attention d 64 bf16 (bench_attention_base_head)" "bench_attention_base_head --head-dim 64 8192 32768 131072 --"; timeout 100 $D/bench_attention_base_head --head-dim 64 8192 32768 131072 --; } > $R/attn_base_head_d64.jsonl 2>&1
echo "== base d64"; grep -v "^#" $R/attn_base_head_d64.jsonl | cut -c1-120
tar -C $OUT -cJf $OUT/r.tar.xz fp8p
ONLY=checks bash tools/bench/run_fp8_prefill_check.sh head
POLICIES=full ONLY=e2e MODEL=configs/models/gemma-3-4b-text.json E2E_RUNS="lcllm bf16;lcllm_base_head bf16" bash tools/bench/run_fp8_prefill_check.sh head
