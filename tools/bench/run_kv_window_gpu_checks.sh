#!/usr/bin/env bash
# E8 item 3 evidence in one device call (H200): the CUDA tests (windowed KV heads included), compute-sanitizer on
# the [kv_window] tests, and end-to-end decode of full vs retrieval-half (one policy per engine, so windowed heads keep
# only their rings and the pool stores the other heads) at 32k and 128k on the Llama-3.1-8B shape. Run from the
# repository root with gpu_carry/dist.tar.xz (tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz) and
# gpu_carry/commit.txt carried; $OUT comes back.
source tools/bench/gpu_dist_env.sh
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 220 $D/test_cuda --durations yes; echo "exit code: $?"; } > $OUT/gpu_tests.log 2>&1
grep -E "FAILED|test cases|exit code|with expansion" -A3 $OUT/gpu_tests.log | head -60
{ hdr "memcheck kv_window" "compute-sanitizer --tool memcheck test_cuda [kv_window]"; timeout 120 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[kv_window]"; echo "exit code: $?"; } > $OUT/memcheck_kv_window.log 2>&1
tail -3 $OUT/memcheck_kv_window.log
for p in full configs/policies/retrieval-half-llama-3.1-8b.json; do
  n=$(basename $p .json)
  timeout 150 $D/lcllm bench configs/models/llama-3.1-8b.json --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --policy $p --json $OUT/e2e_window_$n.json -q > $OUT/e2e_window_$n.log 2>&1; echo "e2e $n exit $?"; tail -8 $OUT/e2e_window_$n.log
done
