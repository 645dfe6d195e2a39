#!/usr/bin/env bash
# One device call for HiP's prefill mask search (E9 item 3, TTFT target): the HiP / key-set CUDA tests, Llama-3.1-8B
# `--policy hip` end to end (TTFT at 32k and 128k, decode at 128k), then where the prefill time goes: ncu's
# per-kernel durations of a 32k hip prefill (kernels named hip or attention only; the GEMMs run unprofiled).
# Carry gpu_carry/ (dist.tar.xz, commit.txt); everything comes back under $OUT.
source tools/bench/gpu_dist_env.sh
R=$OUT/r; mkdir -p $R; M=configs/models/llama-3.1-8b.json
if [ -z "${SKIP_TESTS:-}" ]; then  # SKIP_TESTS=1: an earlier stage of the same call ran the whole suite
  { hdr "HiP and key-set CUDA tests" "test_cuda [hip],[keysets],[sparse]"; timeout 200 $D/test_cuda "[hip],[keysets],[sparse]" --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1
  grep -E "FAILED|failed|passed|exit code" $R/gpu_tests.log | tail -5
fi
{ hdr "Llama-3.1-8B end to end, --policy hip" "lcllm bench $M --device cuda --policy hip --prefill 32k,128k --decode 128k --decode-steps 4";
  timeout 150 $D/lcllm bench $M --device cuda --policy hip --prefill 32k,128k --decode 128k --decode-steps 4 --json $R/e2e_8b_hip.json -q; } > $R/e2e_8b_hip.log 2>&1
tail -6 $R/e2e_8b_hip.log
[ -n "${SKIP_NCU:-}" ] && exit 0
{ hdr "ncu per-kernel durations, hip prefill at 32k (8B)" "ncu -k regex:'hip|attention' --print-summary per-kernel --metrics gpu__time_duration.sum lcllm bench $M --device cuda --policy hip --prefill 32k --decode 1k --decode-steps 1 -q";
  timeout 200 ncu -k regex:'hip|attention' --print-summary per-kernel --metrics gpu__time_duration.sum $D/lcllm bench $M --device cuda --policy hip --prefill 32k --decode 1k --decode-steps 1 -q; } > $R/ncu_hip_prefill_32k.txt 2>&1
grep -E "^  [a-zA-Z_].*\(|gpu__time_duration" $R/ncu_hip_prefill_32k.txt | sed 's/(lcllm::[^)]*)//' | cut -c1-150 | head -40
