#!/usr/bin/env bash
# Second call on a warm machine after run_fp8_kv_gpu_checks.sh (its /tmp/dist stays): the development comparison
# (gpu_carry/dev.tar.xz: lcllm and test_cuda of 128569e built with `kTcForBf16 = true` in
# kernels/attention_decode_tc.cu, the tensor-core decode for bf16 caches too; since a49e8c8 that is the default and
# the constant is gone, so any current build reproduces it) and the logs, packed as one archive ($OUT/r.tar.xz: the
# device returns at most a few files per call). Kept as the record of bench/results/fp8_kv_h200_2026-12-05/dev_*.
D=/tmp/dist; export LD_LIBRARY_PATH=$D:/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
ls $D/lcllm > /dev/null || exit 3
tar -xJf gpu_carry/dev.tar.xz -C /tmp; V=/tmp/dev; R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json
c=$(cat gpu_carry/commit.txt); card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
h() { echo "# $1"; echo "# card: $card"; echo "# date: $(date -u +%FT%TZ)"; echo "# commit: $c"; echo "# command: $2"; }
{ h "dev: tensor-core decode for bf16 too" "test_cuda(kTcForBf16=true) [attention],[keysets],[exact],[graphs],[needle]"; timeout 100 $V/test_cuda_tcbf16 "[attention],[keysets],[exact],[graphs],[needle]"; echo "exit $?"; } > $R/dev_tcbf16_tests.log 2>&1; tail -3 $R/dev_tcbf16_tests.log
timeout 90 $V/lcllm_tcbf16 bench $M --device cuda --prefill 1k --decode 32k,128k,512k --decode-steps 16 --kv-cache-dtype bf16 --json $R/dev_e2e_kv_bf16_tc.json -q > $R/dev_e2e_kv_bf16_tc.log 2>&1; grep -E "^full" $R/dev_e2e_kv_bf16_tc.log
{ h "lcllm CUDA tests" "test_cuda --durations yes"; timeout 200 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; tail -2 $R/gpu_tests.log
{ h "memcheck fp8 + kv_window" "compute-sanitizer --tool memcheck test_cuda [fp8],[kv_window]"; timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[fp8],[kv_window]"; echo "exit code: $?"; } > $R/memcheck_fp8_kv_window.log 2>&1; tail -2 $R/memcheck_fp8_kv_window.log
for dt in auto fp8; do
  timeout 90 $D/lcllm eval niah models/needle --device cuda --kv-cache-dtype $dt --policy full,tidal,hylra,streaming --lengths 1k,4k,8k,16k --out /tmp/n_$dt -q > $R/niah_needle_kv_$dt.log 2>&1
  mkdir -p $R/niah_needle_kv_$dt; cp /tmp/n_$dt/comparison.md /tmp/n_$dt/summary.csv $R/niah_needle_kv_$dt/
done
for p in full configs/policies/retrieval-half-llama-3.1-8b.json; do
  n=$(basename $p .json)
  timeout 90 $D/lcllm bench $M --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --policy $p --json $R/e2e_window_$n.json -q > $R/e2e_window_$n.log 2>&1
done
tar -C /tmp -cJf $OUT/r.tar.xz r; ls -la $OUT
