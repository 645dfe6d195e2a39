#!/usr/bin/env bash
# Session 26 call: the fp8 rotation build's fp8 tests (and memcheck of them), decode split waves
# (LCLLM_DEV_DECODE_WAVES in a dev build: the tensor-core decode planned at 1, 2 or 4 waves of blocks instead of
# one) for attention alone and the 8B end to end at 128k, bf16 and fp8; then the SHORT chunk-size check (the whole
# suite among it). Results in $OUT/w.tar.xz and $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
W=/tmp/w; rm -rf $W; mkdir -p $W; M8=configs/models/llama-3.1-8b.json
packw() { tar -C /tmp -cJf $OUT/w.part w && mv $OUT/w.part $OUT/w.tar.xz; }
{ hdr "CUDA tests [fp8]" "test_cuda [fp8]"; timeout 100 $D/test_cuda "[fp8]"; echo "exit code: $?"; } > $W/tests_fp8.log 2>&1
tail -3 $W/tests_fp8.log; packw
{ hdr "memcheck [ops][fp8]" "compute-sanitizer --tool memcheck test_cuda [ops][fp8]"; timeout 60 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[ops][fp8]"; echo "exit code: $?"; } > $W/memcheck_ops_fp8.log 2>&1
tail -2 $W/memcheck_ops_fp8.log; packw
for dt in fp8 bf16; do for wv in 1 2 4; do
  f=""; [ $dt = fp8 ] && f=--fp8
  { hdr "decode attention, $dt, waves $wv" "LCLLM_DEV_DECODE_WAVES=$wv bench_attention_waves $f -- 32768 131072 524288";
    LCLLM_DEV_DECODE_WAVES=$wv timeout 60 $D/bench_attention_waves $f -- 32768 131072 524288; } > $W/attn_${dt}_w$wv.jsonl 2>&1
  echo "== $dt waves $wv"; grep -v "^#" $W/attn_${dt}_w$wv.jsonl | grep -o "\"context\":[0-9]*\|\"ms\":[0-9.]*\|\"ms_b2b\":[0-9.]*\|\"gbps\":[0-9.]*" | tr "\n" " "; echo
done; done; packw
for wv in 1 4; do for dt in fp8 bf16; do
  { hdr "8B decode at 128k, $dt, waves $wv" "LCLLM_DEV_DECODE_WAVES=$wv lcllm_waves bench $M8 --device cuda --prefill 1k --decode 128k --decode-steps 16 --kv-cache-dtype $dt";
    LCLLM_DEV_DECODE_WAVES=$wv timeout 100 $D/lcllm_waves bench $M8 --device cuda --prefill 1k --decode 128k --decode-steps 16 --kv-cache-dtype $dt --json $W/e2e_${dt}_w$wv.json -q; echo "exit code: $?"; } > $W/e2e_${dt}_w$wv.log 2>&1
  echo "== e2e $dt waves $wv"; grep -i "ms/token\|decode" $W/e2e_${dt}_w$wv.log | tail -2; packw
done; done
SHORT=1 bash tools/bench/run_chunk_size_check.sh
