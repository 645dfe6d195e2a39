#!/usr/bin/env bash
# Where a long prefill's time goes, measured: every kernel of `lcllm bench --prefill LEN` (Llama-3.1-8B shape, each
# of POLICIES, default full and hip) timed alone under ncu (gpu__time_duration, one row per launch), summed by kernel
# name on the host with tools/bench/ttft_breakdown.py. The bench's own copy / GEMM rate measurements, its 256-token
# warm-up prefill and its one-step decode run in the same process; ttft_breakdown.py keeps the launches from the
# second embedding kernel (the prefill's first chunk) up to the first decode kernel. Carry gpu_carry/dist.tar.xz and gpu_carry/commit.txt; results come back as $OUT/r.tar.xz.
#   [LEN=128k] [POLICIES="full hip"] [NCU_TIMEOUT=420] bash tools/bench/run_ttft_breakdown.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
LEN=${LEN:-128k} M8=configs/models/llama-3.1-8b.json
for pol in ${POLICIES:-full hip}; do
  { hdr "lcllm bench $pol, prefill $LEN, without ncu" "lcllm bench $M8 --device cuda --policy $pol --prefill $LEN --decode 1k --decode-steps 1";
    timeout 120 $D/lcllm bench $M8 --device cuda --policy $pol --prefill $LEN --decode 1k --decode-steps 1 -q; echo "exit code: $?"; } > $R/bench_$pol.log 2>&1
  grep -A2 "TTFT" $R/bench_$pol.log | head -3
  { hdr "ncu launch durations, $pol, prefill $LEN" "ncu --metrics gpu__time_duration.sum --csv --page raw lcllm bench ... --policy $pol --prefill $LEN";
    timeout ${NCU_TIMEOUT:-420} ncu --metrics gpu__time_duration.sum --csv --page raw $D/lcllm bench $M8 --device cuda --policy $pol --prefill $LEN --decode 1k --decode-steps 1 -q; echo "exit code: $?"; } > $R/ncu_$pol.csv 2> $R/ncu_$pol.err
  tail -2 $R/ncu_$pol.err; wc -l $R/ncu_$pol.csv
  tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz
done
