#!/usr/bin/env bash
# One device call (< 600 s) for two questions session 18 left open:
#   1. HiP decode with masks refreshed every 8 steps and forward-dilated (docs/POLICIES.md "Decode refresh"):
#      attention-only ms per step over all layers for full, hip, hip-refresh8, hip-all-layers and hip-all-layers-refresh8
#      (bench_sparse_attention; Llama-3.1-8B at 32k / 128k / 512k, Llama-3.2-1B at 1M);
#   2. Gemma 3 4B (head_dim 256, 5 of 6 layers windowed) end to end with prefill v10: lcllm bench TTFT at 32k / 128k
#      and decode at 32k, against transformers (tools/bench/e2e_transformers.py, SDPA) on the same card;
# then, with what is left (RACE_S seconds, default 200), racecheck of the fp8 and bf16 d 256 prefill tests.
# Carry gpu_carry/ (dist.tar.xz from tools/bench/make_gpu_dist.sh with lcllm, test_cuda, bench_sparse_attention;
# commit.txt). Results: $OUT/r.tar.xz (packed after each stage, so a call cut short keeps what ran).
#   bash tools/bench/run_refresh_gemma4b_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json G4=configs/models/gemma-3-4b-text.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json,configs/policies/hip-all-layers-refresh8.json"
{ hdr "attention-only decode: full, hip, hip-refresh8 (dilated), hip-all-layers, hip-all-layers-refresh8" "bench_sparse_attention $M8 32k,128k,512k $P 5; bench_sparse_attention $M1 1m $P 5";
  timeout 100 $D/bench_sparse_attention $M8 32k,128k,512k $P 5; timeout 60 $D/bench_sparse_attention $M1 1m $P 5; } > $R/attention_hip_refresh.jsonl 2>&1
grep -v "^#" $R/attention_hip_refresh.jsonl | grep -o '"context": [0-9]*, "policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/; s/configs.policies.//'
pack
{ hdr "lcllm end to end, gemma-3-4b-text" "lcllm bench $G4 --device cuda --policy full --prefill 32k,128k --decode 32k --decode-steps 8";
  timeout 120 $D/lcllm bench $G4 --device cuda --policy full --prefill 32k,128k --decode 32k --decode-steps 8 --json $R/lcllm_gemma-3-4b-text.json -q; echo "exit code: $?"; } > $R/lcllm_gemma-3-4b-text.log 2>&1
tail -6 $R/lcllm_gemma-3-4b-text.log; pack
{ hdr "transformers end to end, gemma-3-4b-text" "python3 tools/bench/e2e_transformers.py $G4 --prefill 32k,128k --decode 32k --decode-steps 8";
  timeout 150 python3 tools/bench/e2e_transformers.py $G4 --prefill 32k,128k --decode 32k --decode-steps 8 --json $R/hf_gemma-3-4b-text.json 2>&1 | grep -v Warning; echo "exit code: $?"; } > $R/hf_gemma-3-4b-text.log 2>&1
tail -6 $R/hf_gemma-3-4b-text.log; pack
{ hdr "racecheck, d 256 prefill (bf16 and fp8)" "compute-sanitizer --tool racecheck test_cuda (fp8 attention, ragged batches)";
  timeout ${RACE_S:-200} compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda \
    "cuda attention over an fp8 KV cache*,cuda attention matches CPU: ragged batches*"; echo "exit code: $?"; } > $R/racecheck.log 2>&1
tail -3 $R/racecheck.log; pack
