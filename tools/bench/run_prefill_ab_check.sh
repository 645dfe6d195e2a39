#!/usr/bin/env bash
# One device call comparing two builds' prefill end to end: the whole CUDA suite of the new build, then `lcllm bench`
# (Llama-3.1-8B shape, full and hip, TTFT at 32k and 128k, a short decode) for the new build and for lcllm_base (the
# build before the change, packed into the same dist: `make_gpu_dist.sh OUT build/lcllm_base`), one after the other on
# the same card; then (BREAKDOWN=1) the new build's 128k kernel breakdown (run_ttft_breakdown.sh's ncu pass, hip).
# First used for the prefill epilogue fusion (bench/results/prefill_epilogue_fusion_h100_2026-12-07/). Carry gpu_carry/dist.tar.xz and commit.txt.
# POLICIES (default full,hip) compares plans instead of (or as well as) builds; a dist without lcllm_base runs only lcllm.
# BINS (default "lcllm lcllm_base") names more builds packed into the dist (e.g. an experiment's lcllm_nolo).
#   [BREAKDOWN=1] [POLICIES=full,hip,tools/bench/plans/hip-bq64.json] [BINS="lcllm lcllm_base lcllm_nolo"] bash tools/bench/run_prefill_ab_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
M8=configs/models/llama-3.1-8b.json
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
{ hdr "CUDA tests: the whole suite" "test_cuda"; timeout 200 $D/test_cuda; echo "exit code: $?"; } > $R/tests_all.log 2>&1
tail -3 $R/tests_all.log; pack
P=${POLICIES:-full,hip}
for b in ${BINS:-lcllm lcllm_base}; do
  [ -x $D/$b ] || continue
  { hdr "$b: prefill end to end" "$b bench $M8 --device cuda --policy $P --prefill 32k,128k --decode 4k --decode-steps 8";
    timeout 300 $D/$b bench $M8 --device cuda --policy $P --prefill 32k,128k --decode 4k --decode-steps 8 --json $R/e2e_8b_$b.json -q
    echo "exit code: $?"; } > $R/e2e_8b_$b.log 2>&1
  grep -A12 "TTFT" $R/e2e_8b_$b.log | head -13; pack
done
if [ -n "$BREAKDOWN" ]; then
  { hdr "ncu launch durations, hip, prefill 128k" "ncu --metrics gpu__time_duration.sum --csv --page raw lcllm bench ... --policy hip --prefill 128k";
    timeout 300 ncu --metrics gpu__time_duration.sum --csv --page raw $D/lcllm bench $M8 --device cuda --policy hip --prefill 128k --decode 1k --decode-steps 1 -q; echo "exit code: $?"; } > $R/ncu_hip.csv 2> $R/ncu_hip.err
  python3 tools/bench/ttft_breakdown.py $R/ncu_hip.csv | head -12; pack
fi
