# Session 15: decode version 5f (fp8: Q fragments in shared memory, 3 stages, 4 blocks per SM) against 5e.
bash tools/bench/run_fp8_decode_check.sh
QUICK=1 SKIP_SDPA=1 bash tools/bench/run_prefill_v3_check.sh
source tools/bench/gpu_dist_env.sh
{ hdr "bf16 decode attention, base_v5e build" "bench_attention_base_v5e -- 131072 524288"; timeout 60 $D/bench_attention_base_v5e -- 131072 524288; } > /tmp/r/attention_decode_bf16_base_v5e.jsonl 2>&1
echo "== bf16 base_v5e"; grep -v "^#" /tmp/r/attention_decode_bf16_base_v5e.jsonl | cut -c1-160
{ hdr "memcheck keysets + sparse" "compute-sanitizer --tool memcheck test_cuda [keysets] and [sparse]"; for t in "[keysets]" "[sparse]"; do timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "$t"; echo "exit code: $?"; done; } > /tmp/r/memcheck.log 2>&1; grep "exit code\|ERROR SUMMARY" /tmp/r/memcheck.log
cp -r $OUT/fp8 /tmp/r/ 2>/dev/null; tar -C /tmp -cJf $OUT/r.tar.xz r
{ hdr "racecheck fp8" "compute-sanitizer --tool racecheck test_cuda [fp8]"; timeout 100 compute-sanitizer --tool racecheck --error-exitcode 99 $D/test_cuda "[fp8]"; echo "exit code: $?"; } > /tmp/r/racecheck_fp8.log 2>&1; tail -3 /tmp/r/racecheck_fp8.log
tar -C /tmp -cJf $OUT/r.tar.xz r
