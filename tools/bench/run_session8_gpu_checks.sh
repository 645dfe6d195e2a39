#!/usr/bin/env bash
# Session 8's CPU-only work verified in one device call (H200): the full CUDA suite (it covers the review mends of
# 18737fa, the retired experiment switches, mixed plans per step and HiP on the GPU), compute-sanitizer memcheck and
# racecheck on the HiP and key-set tests, HiP against dense attention-only decode (8B at 32k / 128k / 512k, 1B at
# 1M), HiP end to end (8B: TTFT at 32k and 128k, decode), and the needle with hip on cuda. Run from the repository
# root with gpu_carry/dist.tar.xz and gpu_carry/commit.txt carried; everything comes back as $OUT/r.tar.xz. Make the dist
# with the dev GEMV program too: nvcc ... tools/bench/dev/gemv_chunk_versions.cu -o /tmp/gemv_versions (its header),
# then tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz /tmp/gemv_versions.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 160 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; tail -3 $R/gpu_tests.log
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda [hip],[keysets]"; timeout 80 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[hip],[keysets]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1; tail -2 $R/memcheck.log
{ hdr "racecheck" "compute-sanitizer --tool racecheck test_cuda [hip]"; timeout 50 compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda "cuda HiP masks equal*"; echo "exit code: $?"; } > $R/racecheck.log 2>&1; tail -2 $R/racecheck.log
{ hdr "attention-only hip vs full" "bench_sparse_attention $M 32k,128k,512k full,hip 5; bench_sparse_attention $M1 1m full,hip 5"; timeout 70 $D/bench_sparse_attention $M 32k,128k,512k full,hip 5; timeout 40 $D/bench_sparse_attention $M1 1m full,hip 5; } > $R/attention_hip.jsonl 2>&1; cut -c1-260 $R/attention_hip.jsonl | grep -v "^#"
timeout 100 $D/lcllm bench $M --device cuda --policy hip --prefill 32k,128k --decode 32k,128k --decode-steps 8 --json $R/e2e_hip.json -q > $R/e2e_hip.log 2>&1; tail -8 $R/e2e_hip.log
timeout 50 $D/lcllm eval niah models/needle --device cuda --policy full,hip --lengths 1k,4k,8k,16k --out /tmp/n -q > $R/niah.log 2>&1; mkdir -p $R/niah_needle; cp /tmp/n/comparison.md /tmp/n/summary.csv $R/niah_needle/ 2>/dev/null; head -6 $R/niah_needle/comparison.md
# tools/bench/dev's GEMV versions, when the dist has them (make_gpu_dist.sh gpu_carry/dist.tar.xz /tmp/gemv_versions)
[ -x $D/gemv_versions ] && { hdr "dev: GEMV versions" "gemv_versions"; timeout 30 $D/gemv_versions; echo "exit code: $?"; } > $R/gemv_versions.jsonl 2>&1
tar -C /tmp -cJf $OUT/r.tar.xz r
