#!/usr/bin/env bash
# One device stage for the fp8 KV decode (E11 item 3, target: decode at 128k >= 1.3x bf16): the fp8 CUDA tests, then
# Llama-3.1-8B (random weights) end to end with a bf16 and an fp8 KV cache in the same call — decode ms/token at
# 32k / 128k after a 1k prefill, the cache filled to the context without computing it (512k of bf16 KV does not fit
# an H100) — and memcheck of the fp8 tests. Carry gpu_carry/ (dist.tar.xz, commit.txt); writes $OUT/fp8/.
source tools/bench/gpu_dist_env.sh
R=$OUT/fp8; mkdir -p $R; M=configs/models/llama-3.1-8b.json
{ hdr "fp8 CUDA tests" "test_cuda [fp8]"; timeout 120 $D/test_cuda "[fp8]" --durations yes; echo "exit code: $?"; } > $R/fp8_tests.log 2>&1
grep -E "FAILED|failed|passed|exit code" $R/fp8_tests.log | tail -4
for dt in bf16 fp8; do
  { hdr "Llama-3.1-8B decode, $dt KV" "lcllm bench $M --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --kv-cache-dtype $dt";
    timeout 120 $D/lcllm bench $M --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --kv-cache-dtype $dt --json $R/e2e_kv_$dt.json -q; } > $R/e2e_kv_$dt.log 2>&1
  echo "== $dt"; grep -E "^full|decode" $R/e2e_kv_$dt.log | tail -4
done
{ hdr "memcheck fp8" "compute-sanitizer --tool memcheck test_cuda [fp8]"; timeout 120 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[fp8]"; echo "exit code: $?"; } > $R/memcheck_fp8.log 2>&1; tail -2 $R/memcheck_fp8.log
