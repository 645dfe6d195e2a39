source tools/bench/gpu_dist_env.sh
bash tools/bench/run_fp8_decode_check.sh
QUICK=1 SKIP_SDPA=1 bash tools/bench/run_prefill_v3_check.sh
{ hdr "bf16 decode attention, base" "bench_attention_base_5g -- 131072 524288"; timeout 60 $D/bench_attention_base_5g -- 131072 524288; } > /tmp/r/attention_decode_base.jsonl 2>&1; grep -v "^#" /tmp/r/attention_decode_base.jsonl | cut -c1-160
{ hdr "memcheck" "compute-sanitizer memcheck test_cuda [keysets],[sparse]"; timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[keysets],[sparse]"; echo "exit code: $?"; } > /tmp/r/memcheck_ks.log 2>&1; tail -2 /tmp/r/memcheck_ks.log
cp -r $OUT/fp8 /tmp/r/ 2>/dev/null; tar -C /tmp -cJf $OUT/r.tar.xz r
