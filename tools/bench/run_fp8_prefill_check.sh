#!/usr/bin/env bash
# One device call for prefill on the wgmma kernel over bf16 and fp8 KV caches (versions 9 and 10,
# docs/KERNEL_NOTES.md): the fp8, attention and key-set CUDA tests; prefill attention TFLOP/s at 8k / 32k / 128k with
# bf16 and fp8 caches for this build and fp8 for the carried base (at head_dim 256 also the base's bf16); time to
# first token at 32k / 128k; memcheck and racecheck of the fp8, key-set and ragged-batch prefill tests (racecheck:
# SAN_S seconds, default 300; 120 s stopped it inside the fp8 case in session 18); the whole suite.
# QUICK=1 (a short device budget): head_dim 128 only, policy full only, no racecheck, no whole suite; otherwise
# DIMS (default "128 64 256"). SDPA=1 adds the PyTorch SDPA peer at each head_dim. NCU=1 adds an ncu of the fp8
# kernel at 32k with the pipe and instruction sections and per-instruction stall samples (which unit the producer's
# conversion waits on; KERNEL_NOTES "Version 9").
# Stages (two calls of < 600 s for the full run): ONLY=kernels stops after the TFLOP/s; ONLY=rest skips the tests
# and TFLOP/s and runs the rest; ONLY=e2e only the end-to-end runs; ONLY=checks only the sanitizers, ncu and suite.
# MODEL=config, POLICIES and E2E_RUNS="BINARY DTYPE;..." pick the end-to-end runs (default Llama-3.1-8B, full,hip:
# this build fp8, the base fp8, this build bf16). Results: $OUT/fp8p/, r.tar.xz.
#   bash tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz /tmp/bench_attention_base_NAME /tmp/lcllm_base_NAME
#   [QUICK=1] bash tools/bench/run_fp8_prefill_check.sh NAME       (on the device; carry gpu_carry/)
name=${1:?usage: $0 BASE_NAME (the carried dist/bench_attention_base_NAME and dist/lcllm_base_NAME)}
source tools/bench/gpu_dist_env.sh
R=$OUT/fp8p; mkdir -p $R; M=${MODEL:-configs/models/llama-3.1-8b.json}
pack() { tar -C $OUT -cJf $OUT/r.tar.xz fp8p; }
dims=${DIMS:-128 64 256}; policies=${POLICIES:-full,hip}; [ -n "$QUICK" ] && dims=128 && policies=full
if [ -z "$ONLY" ] || [ "$ONLY" = kernels ]; then
{ hdr "CUDA tests: fp8, attention, key sets" "test_cuda [fp8],[attention],[keysets]";
  timeout 150 $D/test_cuda "[fp8],[attention],[keysets]" --durations yes; echo "exit code: $?"; } > $R/tests.log 2>&1
grep -E "FAILED|failed|passed|exit code" $R/tests.log | tail -3
grep -q "^exit code: 0" $R/tests.log || { pack; exit 1; }  # no timings of a broken build
for d in $dims; do
  if [ -n "$SDPA" ]; then  # the peer: PyTorch SDPA flash and cuDNN at the same shapes
    { hdr "SDPA peer d $d" "python3 tools/bench/attention_sdpa.py --head-dim $d --prefill 8192 32768 131072 --decode 131072";
      timeout 150 python3 tools/bench/attention_sdpa.py --head-dim $d --prefill 8192 32768 131072 --decode 131072; } > $R/sdpa_d$d.jsonl 2>&1
    grep -v "^#" $R/sdpa_d$d.jsonl | grep prefill | cut -c1-150
  fi
  runs=("bench_attention_cuda" "bench_attention_cuda --fp8" "bench_attention_base_$name --fp8")
  [ $d = 256 ] && runs+=("bench_attention_base_$name")  # v10: bf16 at d 256 leaves v2 too
  for run in "${runs[@]}"; do
    set -- $run
    { hdr "prefill attention d $d $2 ($1)" "$1 $2 --head-dim $d 8192 32768 131072 --";
      timeout 100 $D/$1 $2 --head-dim $d 8192 32768 131072 --; } > $R/attn_$1_d$d$2.jsonl 2>&1
    grep -v "^#" $R/attn_$1_d$d$2.jsonl | cut -c1-150
  done
done
fi
pack
[ "$ONLY" = kernels ] && exit 0
if [ -z "$ONLY" ] || [ "$ONLY" = rest ] || [ "$ONLY" = e2e ]; then
IFS=';' read -ra e2e_runs <<< "${E2E_RUNS:-lcllm fp8;lcllm_base_$name fp8;lcllm bf16}"
for run in "${e2e_runs[@]}"; do
  set -- $run
  { hdr "$(basename $M .json) TTFT, $2 KV ($1)" "$1 bench $M --device cuda --policy $policies --prefill 32k,128k --decode 4k --decode-steps 4 --kv-cache-dtype $2";
    timeout 150 $D/$1 bench $M --device cuda --policy $policies --prefill 32k,128k --decode 4k --decode-steps 4 --kv-cache-dtype $2 --json $R/e2e_$(basename $M .json)_$1_$2.json -q; } > $R/e2e_$(basename $M .json)_$1_$2.log 2>&1
  echo "== $1 $2"; grep -E "^(full|hip) " $R/e2e_$(basename $M .json)_$1_$2.log | head -4
  pack
done
fi
[ "$ONLY" = e2e ] && exit 0
kinds="memcheck racecheck"; [ -n "$QUICK" ] && kinds=memcheck
for kind in $kinds; do
  { hdr "$kind prefill" "compute-sanitizer --tool $kind test_cuda (fp8 attention, key-set prefill tiles, ragged batches)";
    timeout ${SAN_S:-300} compute-sanitizer --tool $kind --error-exitcode 99 $D/test_cuda \
      "cuda attention over an fp8 KV cache*,cuda key-set prefill tiles*,cuda attention matches CPU: ragged batches*"
    echo "exit code: $?"; } > $R/${kind}.log 2>&1
  echo "== $kind"; tail -2 $R/${kind}.log
  pack
done
if [ -n "$NCU" ]; then
  S="--section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats --section WarpStateStats --section SchedulerStats --section SourceCounters"
  { hdr "ncu prefill v3 fp8 32k" "ncu -k regex:prefill_v3 -s 1 -c 1 $S --import-source yes bench_attention_cuda --fp8 32768 --";
    timeout 150 ncu -k regex:prefill_v3 -s 1 -c 1 $S --import-source yes -o $R/fp8_32k $D/bench_attention_cuda --fp8 32768 --; } > $R/ncu_run.log 2>&1
  ncu --import $R/fp8_32k.ncu-rep --page details --print-details all > $R/ncu_details.txt 2>&1
  ncu --import $R/fp8_32k.ncu-rep --page source --csv --print-source sass > $R/ncu_sass.csv 2>/dev/null; xz -f $R/ncu_sass.csv
  rm -f $R/fp8_32k.ncu-rep
  grep -E "Pipe|pipe|Issued Warp|No Eligible|Stall" $R/ncu_details.txt | head -30
  pack
fi
if [ -z "$QUICK" ]; then
  { hdr "CUDA suite" "test_cuda"; timeout 200 $D/test_cuda; echo "exit code: $?"; } > $R/suite.log 2>&1; tail -2 $R/suite.log
fi
pack
