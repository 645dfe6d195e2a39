# Session 15: where fp8 decode attention's time goes at 128k (ncu sections + SASS stall samples), bf16 alongside.
source tools/bench/gpu_dist_env.sh; R=/tmp/r; rm -rf $R; mkdir -p $R
S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section SourceCounters --section LaunchStats"
for v in fp8 bf16; do
  F=""; [ $v = fp8 ] && F=--fp8
  { hdr "ncu decode tc $v 128k" "ncu -k regex:decode_tc -s 3 -c 1 $S --import-source yes bench_attention_cuda $F -- 131072"; timeout 120 ncu -k regex:decode_tc -s 3 -c 1 $S --import-source yes -o $R/$v $D/bench_attention_cuda $F -- 131072; } > $R/ncu_run_$v.log 2>&1
  ncu --import $R/$v.ncu-rep --page details --print-details all > $R/details_$v.txt 2>&1
  ncu --import $R/$v.ncu-rep --page source --csv --print-source sass > $R/sass_$v.csv 2>/dev/null
  echo "== $v"; grep -E "Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Theoretical Occ|Issued Warp Per|No Eligible|Stall (Long|Wait|Barrier|Short|MIO|Math|Not Sel|Dispatch|LG|No Inst)|Block Limit (Reg|Shared)|Grid Size|Waves" $R/details_$v.txt | head -30
done
tar -C /tmp -cJf $OUT/r.tar.xz r
