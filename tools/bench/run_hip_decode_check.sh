#!/usr/bin/env bash
# One device call for a HiP search change (E9 item 3): the CUDA suite, attention-only decode of the build against a
# baseline build in the same call (dist/bench_base: an earlier commit's bench_sparse_attention), end-to-end hip
# (lcllm bench), memcheck of the [hip] tests, ncu sections of one decode mask search at 32k and 1M, and racecheck
# of the [hip] tests last (slow: RACECHECK_S seconds). Carry gpu_carry/dist_hip.tar.xz (dist/: lcllm, test_cuda,
# bench_sparse_attention, bench_base, the shared libraries) and
# gpu_carry/commit.txt ("NEW over BASE"); everything comes back as $OUT/r.tar.xz. Build the carry from a build of
# NEW and a saved BASE binary: cp BASE/bench_sparse_attention /tmp/bench_base && DIST_SKIP=bench_attention_cuda
# tools/bench/make_gpu_dist.sh gpu_carry/dist_hip.tar.xz /tmp/bench_base (about 26 MB: with the tracked tree it
# must stay under the call's 64 MiB). QUICK=1 stops after the benches
# (then dist/ needs no lcllm); DIST=ARCHIVE carries another archive of the same layout; E2E_POLICIES=full,hip adds
# dense to the end-to-end stage (a same-card comparison).
tar -xJf ${DIST:-gpu_carry/dist_hip.tar.xz} -C /tmp && D=/tmp/dist && export LD_LIBRARY_PATH=$D:/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
hdr() { echo "# $1"; echo "# card: $card"; echo "# date: $(date -u +%FT%TZ)"; echo "# commit: $(cat gpu_carry/commit.txt)"; echo "# command: $2"; }
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json"
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 120 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; grep -E "FAILED|failed|passed" $R/gpu_tests.log | tail -4
pack
for b in bench_sparse_attention bench_base; do
  { hdr "attention-only decode, $b" "$b $M 32k,128k,512k $P 5; $b $M1 1m $P 5"; timeout 60 $D/$b $M 32k,128k,512k $P 5; timeout 30 $D/$b $M1 1m $P 5; } > $R/attention_$b.jsonl 2>&1
  echo "== $b"; grep -v "^#" $R/attention_$b.jsonl | grep -o '"context": [0-9]*, "policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/; s/configs.policies.//'
done
pack
[ -n "${QUICK:-}" ] && exit 0
timeout 150 $D/lcllm bench $M --device cuda --policy ${E2E_POLICIES:-hip} --prefill 32k,128k --decode 32k,128k --decode-steps 8 --json $R/e2e_hip.json -q > $R/e2e_hip.log 2>&1; tail -8 $R/e2e_hip.log
pack
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda [hip]"; timeout 60 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[hip]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1; tail -2 $R/memcheck.log
pack
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis"
{ hdr "ncu, one decode mask search, 8B 32k" "ncu -k regex:attention_hip_mask -s 30 -c 1 $S bench_sparse_attention $M 32k hip 2"; timeout 80 ncu -k regex:attention_hip_mask -s 30 -c 1 $S $D/bench_sparse_attention $M 32k hip 2; } > $R/ncu_mask_32k.txt 2>&1
grep -E "Duration|Cluster Size|Max Active Clusters|Grid Size|Issued Warp|Registers Per" $R/ncu_mask_32k.txt | head -8
{ hdr "ncu, one decode mask search, 1B 1M" "ncu -k regex:attention_hip_mask -s 14 -c 1 $S bench_sparse_attention $M1 1m hip 2"; timeout 80 ncu -k regex:attention_hip_mask -s 14 -c 1 $S $D/bench_sparse_attention $M1 1m hip 2; } > $R/ncu_mask_1m.txt 2>&1
grep -E "Duration|Cluster Size|Max Active Clusters" $R/ncu_mask_1m.txt | head -4
pack
{ hdr "racecheck" "compute-sanitizer --tool racecheck test_cuda [hip]"; timeout ${RACECHECK_S:-150} compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda "[hip]"; echo "exit code: $?"; } > $R/racecheck.log 2>&1; tail -2 $R/racecheck.log
pack
