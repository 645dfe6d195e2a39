#!/usr/bin/env bash
# E9 item 3 (HiP on the GPU) in one device call (H200): the full CUDA suite (HiP masks against the CPU rule for
# clusters of 1-16 CTAs, device-resident masks, the needle's greedy tokens), compute-sanitizer memcheck and racecheck
# on HiP, attention-only decode of hip / hip-refresh8 (its cached steps) / hip-all-layers against dense (8B at 32k /
# 128k / 512k, 1B at 1M), Nsight Compute on one decode mask search at 128k, end-to-end TTFT and decode of full and
# hip (8B, 32k and 128k), and the needle with hip on cuda. Run from the repository root with gpu_carry/dist.tar.xz and
# gpu_carry/commit.txt carried; everything comes back as $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json"
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 160 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; tail -3 $R/gpu_tests.log
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda [hip]"; timeout 80 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[hip]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1; tail -2 $R/memcheck.log
{ hdr "racecheck" "compute-sanitizer --tool racecheck test_cuda 'cuda HiP masks equal*'"; timeout 60 compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda "cuda HiP masks equal*"; echo "exit code: $?"; } > $R/racecheck.log 2>&1; tail -2 $R/racecheck.log
{ hdr "attention-only hip vs full" "bench_sparse_attention $M 32k,128k,512k $P 5; bench_sparse_attention $M1 1m $P 5"; timeout 90 $D/bench_sparse_attention $M 32k,128k,512k $P 5; timeout 50 $D/bench_sparse_attention $M1 1m $P 5; } > $R/attention_hip.jsonl 2>&1; grep -v "^#" $R/attention_hip.jsonl | cut -c60-330
{ hdr "ncu: one HiP decode mask search, 8B at 128k" "ncu -k regex:attention_hip_mask -s 40 -c 1 --section SpeedOfLight --section Occupancy --section LaunchStats bench_sparse_attention $M 128k hip 2"; timeout 90 ncu -k regex:attention_hip_mask -s 40 -c 1 --section SpeedOfLight --section Occupancy --section LaunchStats $D/bench_sparse_attention $M 128k hip 2; } > $R/ncu_hip_mask_128k.txt 2>&1; grep -E "Duration|Cluster|Grid Size|Block Size|Memory Throughput|Compute \(SM\)" $R/ncu_hip_mask_128k.txt | head -8
timeout 170 $D/lcllm bench $M --device cuda --policy full,hip --prefill 32k,128k --decode 32k,128k --decode-steps 8 --json $R/e2e_hip.json -q > $R/e2e_hip.log 2>&1; tail -9 $R/e2e_hip.log
timeout 50 $D/lcllm eval niah models/needle --device cuda --policy full,hip --lengths 1k,4k,8k,16k --out /tmp/n -q > $R/niah.log 2>&1; mkdir -p $R/niah_needle; cp /tmp/n/comparison.md /tmp/n/summary.csv $R/niah_needle/ 2>/dev/null; head -6 $R/niah_needle/comparison.md
tar -C /tmp -cJf $OUT/r.tar.xz r
