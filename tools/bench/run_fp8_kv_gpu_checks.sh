#!/usr/bin/env bash
# E11 item 3 (fp8 KV cache) and E8 item 3 (windowed KV heads) evidence in one device call (H200): the CUDA tests,
# compute-sanitizer memcheck on the fp8 and kv_window tests, needle accuracy on models/needle with bf16 and fp8 KV,
# and Llama-3.1-8B-shape decode with bf16 vs fp8 KV at 32k / 128k / 512k plus the largest fp8 context.
# Run from the repository root with gpu_carry/dist.tar.xz (tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz) and
# gpu_carry/commit.txt carried; everything comes back as $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 240 $D/test_cuda --durations yes; echo "exit code: $?"; } > $OUT/gpu_tests.log 2>&1
grep -E "FAILED|test cases|exit code|with expansion|fp8 windowed" -A3 $OUT/gpu_tests.log | head -60
{ hdr "memcheck fp8 + kv_window" "compute-sanitizer --tool memcheck test_cuda [fp8],[kv_window]"; timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[fp8],[kv_window]"; echo "exit code: $?"; } > $OUT/memcheck_fp8_kv_window.log 2>&1
tail -3 $OUT/memcheck_fp8_kv_window.log
for dt in auto fp8; do
  timeout 90 $D/lcllm eval niah models/needle --device cuda --kv-cache-dtype $dt --policy full,tidal,hylra,streaming --lengths 1k,4k,8k,16k --out /tmp/niah_needle_kv_$dt -q > $OUT/niah_needle_kv_$dt.log 2>&1; echo "niah $dt exit $?"
  mkdir -p $OUT/niah_needle_kv_$dt && cp /tmp/niah_needle_kv_$dt/{comparison.md,summary.csv} $OUT/niah_needle_kv_$dt/; head -12 $OUT/niah_needle_kv_$dt/comparison.md
done
M=configs/models/llama-3.1-8b.json
for dt in auto fp8; do
  timeout 150 $D/lcllm bench $M --device cuda --prefill 8k --decode 32k,128k,512k --decode-steps 16 --kv-cache-dtype $dt --policy full --json $OUT/e2e_kv_$dt.json -q > $OUT/e2e_kv_$dt.log 2>&1; echo "e2e kv $dt exit $?"; tail -8 $OUT/e2e_kv_$dt.log
done
# The largest contexts: 900k tokens of bf16 KV and twice that in fp8, under the same memory fraction.
timeout 120 $D/lcllm bench $M --device cuda --prefill 1k --decode 900k --decode-steps 8 --kv-cache-dtype bf16 --gpu-memory-fraction 0.96 --policy full --json $OUT/e2e_kv_bf16_900k.json -q > $OUT/e2e_kv_bf16_900k.log 2>&1; echo "e2e bf16 900k exit $?"; tail -4 $OUT/e2e_kv_bf16_900k.log
timeout 120 $D/lcllm bench $M --device cuda --prefill 1k --decode 1800k --decode-steps 8 --kv-cache-dtype fp8 --gpu-memory-fraction 0.96 --policy full --json $OUT/e2e_kv_fp8_1800k.json -q > $OUT/e2e_kv_fp8_1800k.log 2>&1; echo "e2e fp8 1800k exit $?"; tail -4 $OUT/e2e_kv_fp8_1800k.log
for p in full configs/policies/retrieval-half-llama-3.1-8b.json; do
  n=$(basename $p .json)
  timeout 100 $D/lcllm bench $M --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --policy $p --json $OUT/e2e_window_$n.json -q > $OUT/e2e_window_$n.log 2>&1; echo "e2e $n exit $?"; tail -5 $OUT/e2e_window_$n.log
done
# The device returns only a few files per call: everything comes back as one archive.
tar -C $OUT -cJf /tmp/fp8_checks.tar.xz . && find $OUT -mindepth 1 -delete && mv /tmp/fp8_checks.tar.xz $OUT/r.tar.xz
