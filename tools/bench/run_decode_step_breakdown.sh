#!/usr/bin/env bash
# Where an 8B decode step's time goes at 128k, bf16 against fp8 KV (E11 item 3: fp8 decode >= 1.3x bf16): the step's
# ms/token from `lcllm bench` at 1k and 128k (no profiler), then every launch of two decode steps at 128k timed alone
# under ncu (gpu__time_duration, the GPU's own clocks: --clock-control none), summed per step by kind and by name
# with `ttft_breakdown.py --decode` on the host. What the kernels do not account for (ms/token minus their sum) is
# the step's launch gaps and host work. Carry gpu_carry/dist.tar.xz and gpu_carry/commit.txt; results: $OUT/r.tar.xz.
#   [QUICK=1] [STAGES="tests runs e2e ncu"] [BASES="lcllm_base"] bash tools/bench/run_decode_step_breakdown.sh
#   (on the device; STAGES picks stages so that a 10-minute call limit can split them: "tests runs e2e", then "ncu")
#   python3 tools/bench/ttft_breakdown.py --decode --by-name r/ncu_decode_{bf16,fp8}.csv   (here, on the results)
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
M8=configs/models/llama-3.1-8b.json
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
# QUICK=1 (a short call): the argmax test alone, decode at 128k alone, no profiling.
TESTS="[ops],[forward]~[parity]" LENS=1k,128k STAGES=${STAGES:-tests runs e2e ncu}
[ "${QUICK:-0}" = 1 ] && { TESTS="cuda argmax_rows*"; LENS=128k; STAGES=${STAGES/ncu/}; }
has() { case " $STAGES " in *" $1 "*) return 0;; esac; return 1; }
if has tests && [ -x $D/test_cuda ]; then  # the CUDA ops and forward tests first, when the dist carries them
  { hdr "CUDA tests" "test_cuda $TESTS"; timeout 200 $D/test_cuda "$TESTS"; echo "exit code: $?"; } > $R/tests.log 2>&1
  tail -3 $R/tests.log
fi
# BASES: other builds carried in the dist (e.g. lcllm_base), timed in the same call; greedy text on models/needle
# and the embedded default model compared with this build's.
for b in $(has runs && echo lcllm ${BASES:-}); do
  [ -x $D/$b ] || { echo "missing $D/$b"; continue; }
  for m in models/default models/needle; do
    n=$(basename $m)
    hdr "$b run --device cuda, greedy" "$b run $m --device cuda --temperature 0 -n 48 -p 'The quick brown fox'" > $R/run_${b}_$n.err
    timeout 60 $D/$b run $m --device cuda --temperature 0 -n 48 -p 'The quick brown fox' -q > $R/run_${b}_$n.txt 2>> $R/run_${b}_$n.err
    echo "exit code: $?" >> $R/run_${b}_$n.err
  done
done
for m in $(has runs && echo default needle); do for b in ${BASES:-}; do
  cmp -s $R/run_lcllm_$m.txt $R/run_${b}_$m.txt && [ -s $R/run_lcllm_$m.txt ] \
    && echo "greedy text on models/$m: lcllm = $b" || echo "greedy text on models/$m: lcllm DIFFERS from $b"; done; done
pack
for dt in $(has e2e && echo bf16 fp8); do for b in lcllm ${BASES:-}; do
  { hdr "8B decode, $dt KV, no profiler, $b" "$b bench $M8 --device cuda --prefill 1k --decode $LENS --decode-steps 32 --kv-cache-dtype $dt";
    timeout 120 $D/$b bench $M8 --device cuda --prefill 1k --decode $LENS --decode-steps 32 --kv-cache-dtype $dt --json $R/e2e_${b}_$dt.json -q; echo "exit code: $?"; } > $R/e2e_${b}_$dt.log 2>&1
  echo "== $b $dt"; grep -E "^full" $R/e2e_${b}_$dt.log | tail -2; pack
done; done
pack
for dt in $(has ncu && echo bf16 fp8); do
  { hdr "ncu launch durations, 8B decode at 128k, $dt KV" "ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw lcllm bench $M8 --device cuda --prefill 1k --decode 128k --decode-steps 2 --kv-cache-dtype $dt";
    timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum --csv --page raw $D/lcllm bench $M8 --device cuda --prefill 1k --decode 128k --decode-steps 2 --kv-cache-dtype $dt -q; echo "exit code: $?"; } > $R/ncu_decode_$dt.csv 2> $R/ncu_decode_$dt.err
  tail -2 $R/ncu_decode_$dt.err; wc -l $R/ncu_decode_$dt.csv
  pack
done
! has ncu || python3 tools/bench/ttft_breakdown.py --decode --by-name $R/ncu_decode_bf16.csv $R/ncu_decode_fp8.csv > $R/breakdown.txt 2>&1; head -30 $R/breakdown.txt; pack
