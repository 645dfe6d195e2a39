#!/usr/bin/env bash
# One device call for the wgmma prefill (E9 item 1): the CUDA suite, prefill TFLOP/s of this build against the
# previous kernels (dist/bench_attention_base*: earlier commits' bench_attention_cuda, if carried) and PyTorch SDPA
# flash / cuDNN in the same call, fp8 KV decode attention of the builds that know --fp8, attention-only decode
# (dense and hip), Llama-3.1-8B end to end (TTFT and decode, full and hip) and Llama-3.2-1B, memcheck of the attention and key-set tests, racecheck of the attention tests last.
# Carry gpu_carry/dist.tar.xz (tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz [/tmp/bench_attention_base_NAME...]) and
# gpu_carry/commit.txt ("NEW over BASE"); everything comes back as $OUT/r.tar.xz, packed after each stage.
# QUICK=1 stops after the kernel benches. FAST=1 (a short device budget) leaves out the attention-only decode stage,
# the 1B model and racecheck (RACECHECK=1 keeps it), and runs the 8B end to end at 32k and 128k only; SKIP_SDPA=1
# leaves out the PyTorch peer.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 240 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1
grep -E "FAILED|failed|passed" $R/gpu_tests.log | tail -4
pack
L="8192 32768 131072"
{ hdr "prefill and decode attention, this build" "bench_attention_cuda $L -- 131072 524288"; timeout 90 $D/bench_attention_cuda $L -- 131072 524288; } > $R/attention_prefill.jsonl 2>&1
grep -v "^#" $R/attention_prefill.jsonl | cut -c1-200
for b in $D/bench_attention_base*; do  # earlier builds carried for an A/B in the same call (suffix: their name)
  [ -x $b ] || continue; n=${b##*/bench_attention_}
  { hdr "prefill attention, $n build" "bench_attention_$n $L"; timeout 90 $b $L; } > $R/attention_prefill_$n.jsonl 2>&1
  echo "== $n"; grep -v "^#" $R/attention_prefill_$n.jsonl | cut -c1-200
done
# fp8 KV decode, attention only, this build and every carried build that knows --fp8 (bf16 decode is above).
for b in $D/bench_attention_cuda $D/bench_attention_base*; do
  [ -x $b ] && grep -q lcllm_decode_tc_fp8 $b || continue; n=${b##*/bench_attention_}
  { hdr "fp8 decode attention, $n build" "bench_attention_$n --fp8 -- 131072 524288"; timeout 60 $b --fp8 -- 131072 524288; } > $R/attention_decode_fp8_$n.jsonl 2>&1
  echo "== fp8 $n"; grep -v "^#" $R/attention_decode_fp8_$n.jsonl | cut -c1-200
done
if [ -z "${SKIP_SDPA:-}" ]; then  # SKIP_SDPA=1: a short device budget; the peer was timed in an earlier call
  { hdr "SDPA peer" "python3 tools/bench/attention_sdpa.py --prefill $L --decode 131072 524288"; timeout 120 python3 tools/bench/attention_sdpa.py --prefill $L --decode 131072 524288; } > $R/attention_sdpa.jsonl 2>&1
  grep -v "^#" $R/attention_sdpa.jsonl | cut -c1-200
fi
pack
P="full,hip"
[ -z "${FAST:-}" ] && { hdr "attention-only decode" "bench_sparse_attention $M 32k,128k,512k $P 5; bench_sparse_attention $M1 1m $P 5"; timeout 60 $D/bench_sparse_attention $M 32k,128k,512k $P 5; timeout 30 $D/bench_sparse_attention $M1 1m $P 5; } > $R/attention_decode.jsonl 2>&1
[ -f $R/attention_decode.jsonl ] && grep -v "^#" $R/attention_decode.jsonl | grep -o '"context": [0-9]*, "policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/'
pack
[ -n "${QUICK:-}" ] && exit 0
E2E="--prefill 8k,32k,128k --decode 32k,128k --decode-steps 8"; [ -n "${FAST:-}" ] && E2E="--prefill 32k,128k --decode 128k --decode-steps 4"
timeout 240 $D/lcllm bench $M --device cuda --policy full,hip $E2E --json $R/e2e_8b.json -q > $R/e2e_8b.log 2>&1; tail -12 $R/e2e_8b.log
pack
[ -z "${FAST:-}" ] && timeout 120 $D/lcllm bench $M1 --device cuda --policy full,hip --prefill 32k,128k --decode 128k --decode-steps 8 --json $R/e2e_1b.json -q > $R/e2e_1b.log 2>&1 && tail -9 $R/e2e_1b.log
pack
MC="[attention]~[long]"; [ -n "${FAST:-}" ] && MC="[attention]~[long]~[fp8]~[decode]"
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda $MC and [keysets]"; timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "$MC"; echo "exit code: $?"; timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[keysets]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1; grep "exit code\|ERROR SUMMARY" $R/memcheck.log
pack
[ -n "${FAST:-}" ] && [ -z "${RACECHECK:-}" ] && exit 0  # RACECHECK=1 runs it in FAST mode too
{ hdr "racecheck" "compute-sanitizer --tool racecheck test_cuda [attention]~[long]~[fp8]"; timeout ${RACECHECK_S:-120} compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda "[attention]~[long]~[fp8]"; echo "exit code: $?"; } > $R/racecheck.log 2>&1; tail -2 $R/racecheck.log
pack
