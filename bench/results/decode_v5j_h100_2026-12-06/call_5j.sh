source tools/bench/gpu_dist_env.sh
bash tools/bench/run_fp8_decode_check.sh
QUICK=1 SKIP_SDPA=1 bash tools/bench/run_prefill_v3_check.sh
{ hdr "bf16 decode attention, base" "bench_attention_base_5i -- 131072 524288"; timeout 60 $D/bench_attention_base_5i -- 131072 524288; } > /tmp/r/attention_decode_base.jsonl 2>&1; grep -v "^#" /tmp/r/attention_decode_base.jsonl | cut -c1-160
{ hdr "memcheck" "compute-sanitizer memcheck test_cuda [keysets],[sparse]"; timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[keysets],[sparse]"; echo "exit code: $?"; } > /tmp/r/memcheck_ks.log 2>&1; tail -2 /tmp/r/memcheck_ks.log
cp -r $OUT/fp8 /tmp/r/ 2>/dev/null; tar -C /tmp -cJf $OUT/r.tar.xz r
S="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section SourceCounters"
R=/tmp/r
{ hdr "ncu decode tc fp8 128k (5j)" "ncu -k regex:decode_tc -s 3 -c 1 $S --import-source yes bench_attention_cuda --fp8 -- 131072"; timeout 120 ncu -k regex:decode_tc -s 3 -c 1 $S --import-source yes -o $R/fp8 $D/bench_attention_cuda --fp8 -- 131072; } > $R/ncu_run_fp8.log 2>&1
ncu --import $R/fp8.ncu-rep --page details --print-details all > $R/details_fp8.txt 2>&1
ncu --import $R/fp8.ncu-rep --page source --csv --print-source sass > $R/sass_fp8.csv 2>/dev/null; xz $R/sass_fp8.csv; rm -f $R/fp8.ncu-rep
echo "== fp8"; grep -E "Duration|DRAM Throughput|Issued Warp Per|No Eligible|Warp Cycles Per Issued|Stall (Long|Wait|Short|Math|Not Sel|No Inst|Branch)" $R/details_fp8.txt | head -16
tar -C /tmp -cJf $OUT/r.tar.xz r
