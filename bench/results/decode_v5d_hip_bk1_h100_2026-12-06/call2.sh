# Session 15 call 2: ncu of prefill 8d at 32k; HiP TTFT re-measure; HiP decode masks of single keys priced
LEN=32768 bash tools/bench/run_prefill_profile.sh
SKIP_TESTS=1 SKIP_NCU=1 bash tools/bench/run_hip_prefill_check.sh
source tools/bench/gpu_dist_env.sh; M=configs/models/llama-3.1-8b.json; P=full,hip,gpu_carry/hip_dec_bk1_8b.json
{ hdr "attention-only decode, hip decode masks of single keys" "bench_sparse_attention $M 32k,128k,512k $P 5"; timeout 90 $D/bench_sparse_attention $M 32k,128k,512k $P 5; } > $OUT/r/hip_bk1_attention_decode.jsonl 2>&1
grep -v "^#" $OUT/r/hip_bk1_attention_decode.jsonl | grep -o '"context": [0-9]*, "policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/'
{ hdr "Llama-3.1-8B decode, hip vs hip with single-key decode masks" "lcllm bench $M --device cuda --policy hip,gpu_carry/hip_dec_bk1_8b.json --prefill 1k --decode 32k,128k --decode-steps 8"; timeout 120 $D/lcllm bench $M --device cuda --policy hip,gpu_carry/hip_dec_bk1_8b.json --prefill 1k --decode 32k,128k --decode-steps 8 --json $OUT/r/e2e_hip_bk1.json -q; } > $OUT/r/e2e_hip_bk1.log 2>&1; tail -6 $OUT/r/e2e_hip_bk1.log
