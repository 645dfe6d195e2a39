#!/usr/bin/env bash
# Profile of one prefill attention launch (causal GQA, 32 / 8 heads, head_dim 128, LEN tokens, default 8192) under
# ncu: SpeedOfLight, Occupancy, WarpStateStats, SchedulerStats, MemoryWorkloadAnalysis, ComputeWorkloadAnalysis and
# per-instruction stall samples (CUDA source and SASS; the kernels are built with -lineinfo), plus the attention tests.
# Carry gpu_carry/dist.tar.xz and gpu_carry/commit.txt; everything comes back as $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; LEN=${LEN:-8192}
{ hdr "attention tests" "test_cuda [attention]"; timeout 120 $D/test_cuda "[attention]"; echo "exit code: $?"; } > $R/attention_tests.log 2>&1; grep -E "FAILED|passed|failed" $R/attention_tests.log | tail -3
timeout 60 $D/bench_attention_cuda $LEN 32768 -- > $R/attention_prefill.jsonl 2>&1; cut -c1-150 $R/attention_prefill.jsonl
S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section SourceCounters --section LaunchStats"
timeout 200 ncu -k regex:attention_prefill -s 2 -c 1 $S --import-source yes -o $R/prefill $D/bench_attention_cuda $LEN -- > $R/ncu_run.log 2>&1; tail -2 $R/ncu_run.log
ncu --import $R/prefill.ncu-rep --page details --print-details all > $R/details.txt 2>&1
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|DRAM Throughput|Registers Per|Achieved Occupancy|Issued Warp|No Eligible|Stall|Tensor|L1/TEX Hit|L2 Hit" $R/details.txt | head -40
ncu --import $R/prefill.ncu-rep --page source --csv --print-source sass > $R/source_sass.csv 2> $R/source_sass.err; wc -l $R/source_sass.csv
ncu --import $R/prefill.ncu-rep --page source --csv --print-source cuda > $R/source_cuda.csv 2>/dev/null; wc -l $R/source_cuda.csv
tar -C /tmp -cJf $OUT/r.tar.xz r
