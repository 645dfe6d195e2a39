#!/usr/bin/env bash
# One device call (< 600 s) for two questions session 18 left open, after the sparse / HiP CUDA tests:
#   1. HiP decode with masks refreshed every 8 steps and forward-dilated (docs/POLICIES.md "Decode refresh"):
#      attention-only ms per step over all layers for full, hip, hip-refresh8, hip-all-layers and
#      hip-all-layers-refresh8 (bench_sparse_attention; Llama-3.1-8B at 32k / 128k / 512k, Llama-3.2-1B at 1M), for
#      this build and, when dist/ has one, an earlier build's binary as bench_base (the same call, the same card);
#   2. Gemma 3 4B (head_dim 256, 5 of 6 layers windowed) end to end with prefill v10: lcllm bench TTFT at 32k / 128k
#      and decode at 32k, against transformers (tools/bench/e2e_transformers.py, SDPA) on the same card;
# then memcheck of the [hip] tests and, with RACE=1, racecheck of the fp8 and bf16 d 256 prefill tests (RACE_S
# seconds, default 200).
# Carry gpu_carry/ (dist.tar.xz from tools/bench/make_gpu_dist.sh with lcllm, test_cuda, bench_sparse_attention
# and optionally bench_base; commit.txt). Results: $OUT/r.tar.xz (packed after each stage, so a call cut short keeps
# what ran).
# E2E=0 skips stage 2 (a kernel change: tests, the attention-only benches and memcheck only). DECODE_E2E=1 adds
# lcllm bench decode (positions advancing, 32 steps) of full, hip and hip-refresh8 for Llama-3.1-8B at 32k / 128k
# and Llama-3.2-1B at 1M after stage 1.
#   bash tools/bench/run_refresh_gemma4b_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json G4=configs/models/gemma-3-4b-text.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json,configs/policies/hip-all-layers-refresh8.json"
{ hdr "CUDA tests: sparse, hip" "test_cuda [sparse],[hip]"; timeout 150 $D/test_cuda "[sparse],[hip]" --durations yes; echo "exit code: $?"; } > $R/tests.log 2>&1
grep -E "FAILED|failed|passed|exit code" $R/tests.log | tail -3; pack
for b in bench_sparse_attention bench_base; do
  [ -x $D/$b ] || continue
  { hdr "attention-only decode ($b): full, hip, hip-refresh8 (dilated), hip-all-layers, hip-all-layers-refresh8" "$b $M8 32k,128k,512k $P 5; $b $M1 1m $P 5";
    timeout 90 $D/$b $M8 32k,128k,512k $P 5; timeout 50 $D/$b $M1 1m $P 5; } > $R/attention_$b.jsonl 2>&1
  echo "== $b"; grep -v "^#" $R/attention_$b.jsonl | sed 's/"card": "[^"]*", "model": "configs.models.//; s/configs.policies.//; s/"layers.*"attention_ms_per_step_b2b"/ b2b/; s/, "kv_bytes_read.*//' | cut -c1-220
  pack
done
if [ -n "${DECODE_E2E:-}" ]; then
  P3="full,hip,configs/policies/hip-refresh8.json"
  { hdr "lcllm decode end to end, 8B: $P3" "lcllm bench $M8 --device cuda --policy $P3 --prefill 4k --decode 32k,128k --decode-steps 32";
    timeout 200 $D/lcllm bench $M8 --device cuda --policy $P3 --prefill 4k --decode 32k,128k --decode-steps 32 --json $R/e2e_8b.json -q; echo "exit code: $?"; } > $R/e2e_8b.log 2>&1
  tail -8 $R/e2e_8b.log
  { hdr "lcllm decode end to end, 1B at 1M: $P3" "lcllm bench $M1 --device cuda --policy $P3 --prefill 4k --decode 1m --decode-steps 32";
    timeout 200 $D/lcllm bench $M1 --device cuda --policy $P3 --prefill 4k --decode 1m --decode-steps 32 --json $R/e2e_1b.json -q; echo "exit code: $?"; } > $R/e2e_1b.log 2>&1
  tail -5 $R/e2e_1b.log; pack
fi
if [ "${E2E:-1}" != 0 ]; then
{ hdr "lcllm end to end, gemma-3-4b-text" "lcllm bench $G4 --device cuda --policy full --prefill 32k,128k --decode 32k --decode-steps 8";
  timeout 120 $D/lcllm bench $G4 --device cuda --policy full --prefill 32k,128k --decode 32k --decode-steps 8 --json $R/lcllm_gemma-3-4b-text.json -q; echo "exit code: $?"; } > $R/lcllm_gemma-3-4b-text.log 2>&1
tail -6 $R/lcllm_gemma-3-4b-text.log; pack
{ hdr "transformers end to end, gemma-3-4b-text" "python3 tools/bench/e2e_transformers.py $G4 --prefill 32k,128k --decode 32k --decode-steps 8";
  timeout 140 python3 tools/bench/e2e_transformers.py $G4 --prefill 32k,128k --decode 32k --decode-steps 8 --json $R/hf_gemma-3-4b-text.json 2>&1 | grep -v Warning; echo "exit code: $?"; } > $R/hf_gemma-3-4b-text.log 2>&1
tail -6 $R/hf_gemma-3-4b-text.log; pack
fi
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda [hip]"; timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[hip]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1
tail -2 $R/memcheck.log; pack
[ -n "${RACE:-}" ] || exit 0
{ hdr "racecheck, d 256 prefill (bf16 and fp8)" "compute-sanitizer --tool racecheck test_cuda (fp8 attention, ragged batches)";
  timeout ${RACE_S:-200} compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda \
    "cuda attention over an fp8 KV cache*,cuda attention matches CPU: ragged batches*"; echo "exit code: $?"; } > $R/racecheck.log 2>&1
tail -3 $R/racecheck.log; pack
