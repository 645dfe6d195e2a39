#!/usr/bin/env bash
# One HiP prefill mask search profiled in full (ncu --set full with per-instruction stall samples, CUDA source and
# SASS; the kernels are built with -lineinfo): the Llama-3.1-8B shape's `hip` preset at 128k, a search of a late
# chunk (-s SKIP launches of kernel_attention_hip_mask first; 696 per 128k prefill), where the TTFT's 1.46 s of
# searches is spent (bench/results/prefill_epilogue_fusion_h100_2026-12-07/). Carry gpu_carry/dist.tar.xz and
# gpu_carry/commit.txt; everything comes back as $OUT/r.tar.xz.
#   [SKIP=600] bash tools/bench/run_hip_prefill_search_profile.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M8=configs/models/llama-3.1-8b.json
skip=${SKIP:-600}
{ hdr "ncu --set full, one hip prefill search at 128k (launch $skip)" "ncu -k regex:attention_hip_mask -s $skip -c 1 --set full --import-source yes lcllm bench $M8 --device cuda --policy hip --prefill 128k --decode 1k --decode-steps 1 -q";
  timeout 240 ncu -k regex:attention_hip_mask -s $skip -c 1 --set full --import-source yes -o $R/search \
    $D/lcllm bench $M8 --device cuda --policy hip --prefill 128k --decode 1k --decode-steps 1 -q; echo "exit code: $?"; } > $R/ncu_run.log 2>&1
tail -3 $R/ncu_run.log
ncu --import $R/search.ncu-rep --page details --print-details all > $R/details.txt 2>&1
grep -E "Duration|Registers|Achieved Occupancy|Issued Ipc|Compute \(SM\) Throughput|Memory Throughput|L1/TEX Hit|L2 Hit|Shared|Block Limit" $R/details.txt | head -30
ncu --import $R/search.ncu-rep --page source --csv --print-source cuda > $R/source_cuda.csv 2> $R/source_cuda.err
ncu --import $R/search.ncu-rep --page source --csv --print-source sass > $R/source_sass.csv 2> $R/source_sass.err
wc -l $R/source_*.csv; xz -T4 $R/source_*.csv
tar -C /tmp -cJf $OUT/r.tar.xz r
