#!/usr/bin/env bash
# One device call for the E3 closing evidence: the CUDA tests (full log), compute-sanitizer memcheck on the ops,
# fused-kernel, GEMV and graph tests, Llama-3.2-1B decode with CUDA graphs on and off, then
# tools/bench/run_decode_profile.sh (8B decode with/without graphs, ncu per-kernel table, attention ncu, SASS).
#   OUT=dir tools/bench/run_gpu_checks.sh      (run from the repository root; binaries in build-cuda/dist)
set -uo pipefail
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/build-cuda/dist:/usr/local/cuda/lib64; export PATH=$PATH:/usr/local/cuda/bin; D=build-cuda/dist
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
{ echo "# lcllm CUDA backend tests (session 3: graphs, GEMV, fused kernels)"; echo "# card: $card"; echo "# date: $(date -u +%FT%TZ)"; echo "# command: test_cuda --durations yes"; timeout 250 $D/test_cuda --durations yes; echo "exit code: $?"; } > $OUT/gpu_tests.log 2>&1
grep -E "graphs:|test cases|exit code" $OUT/gpu_tests.log
{ echo "# compute-sanitizer memcheck on the new kernels' tests"; echo "# card: $card"; echo "# date: $(date -u +%FT%TZ)"; echo "# command: compute-sanitizer --tool memcheck --error-exitcode 99 test_cuda '[fused],[gemv],[graphs],[ops]'"; timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda '[fused],[gemv],[graphs],[ops]'; echo "exit code: $?"; } > $OUT/memcheck.log 2>&1
tail -3 $OUT/memcheck.log
for g in 1 0; do echo "== 1B graphs=$g"; LCLLM_CUDA_GRAPHS=$g timeout 100 $D/lcllm bench configs/models/llama-3.2-1b.json --device cuda --prefill 1k --decode 4k,128k --decode-steps 64 -q 2>&1 | grep -A3 "decode at"; done
bash tools/bench/run_decode_profile.sh build-cuda/dist /tmp/prof > /tmp/prof.log 2>&1
cp /tmp/prof/ncu_decode_summary.txt /tmp/prof/e2e_8b_32k_graphs.json /tmp/prof/e2e_8b_32k_nographs.json /tmp/prof/sass_histogram.txt $OUT/
cp /tmp/prof.log $OUT/decode_profile.log
grep -A16 "RECAP" /tmp/prof.log | head -18
