# Session 15: decode version 5e (one slot lookup per key, shuffled to the lanes copying its pieces) against 5d.
bash tools/bench/run_fp8_decode_check.sh
QUICK=1 SKIP_SDPA=1 bash tools/bench/run_prefill_v3_check.sh
source tools/bench/gpu_dist_env.sh
{ hdr "bf16 decode attention, base_v5d build" "bench_attention_base_v5d -- 131072 524288"; timeout 60 $D/bench_attention_base_v5d -- 131072 524288; } > /tmp/r/attention_decode_bf16_base_v5d.jsonl 2>&1
echo "== bf16 base_v5d"; grep -v "^#" /tmp/r/attention_decode_bf16_base_v5d.jsonl | cut -c1-160
{ hdr "memcheck keysets + decode" "compute-sanitizer --tool memcheck test_cuda [keysets] and [sparse]"; for t in "[keysets]" "[sparse]"; do timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "$t"; echo "exit code: $?"; done; } > /tmp/r/memcheck.log 2>&1; grep "exit code\|ERROR SUMMARY" /tmp/r/memcheck.log
cp -r $OUT/fp8 /tmp/r/ 2>/dev/null; tar -C /tmp -cJf $OUT/r.tar.xz r
