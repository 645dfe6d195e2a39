#!/usr/bin/env bash
# Repeated 8B decode timings at one context, builds interleaved (rep 1: every build and dtype, rep 2: ...), so that a
# difference of ~1% between builds is not the machine drifting between two runs. Carry gpu_carry/dist.tar.xz (with
# the other builds, e.g. lcllm_base) and gpu_carry/commit.txt; prints "rep build dtype ms/token" and writes
# $OUT/reps.log. A build named NAME:async runs NAME with --async-decode (pipelined decode steps).
#   [REPS=3] [STEPS=64] [LEN=128k] [BUILDS="lcllm lcllm:async lcllm_base"] bash tools/bench/run_decode_reps.sh   (on the device)
source tools/bench/gpu_dist_env.sh
M8=configs/models/llama-3.1-8b.json
LEN=${LEN:-128k} STEPS=${STEPS:-64}
{
  hdr "8B decode ms/token at $LEN, builds interleaved" "for rep in 1..${REPS:-3}; for b in ${BUILDS:-lcllm lcllm_base};\
 for dt in bf16 fp8: \$b bench (ms/token, GPU ms, busy) $M8 --device cuda --prefill 1k --decode $LEN --decode-steps $STEPS --kv-cache-dtype \$dt"
  for rep in $(seq 1 "${REPS:-3}"); do for b in ${BUILDS:-lcllm lcllm_base}; do for dt in bf16 fp8; do
    bin=${b%%:*}; extra=; [ "$b" != "$bin" ] && extra=--async-decode
    ms=$(timeout 120 "$D/$bin" bench $M8 --device cuda --prefill 1k --decode "$LEN" --decode-steps "$STEPS" \
         --kv-cache-dtype $dt $extra -q 2>&1 | awk '$1 == "full" && $2 != "1024" {v = $3 " " $9 " " $10} END {print v}')
    echo "$rep $b $dt $ms"
  done; done; done
} | tee "$OUT/reps.log"
