# Session 16: where fp8 decode attention 5i's time goes at 128k (ncu sections + SASS stall samples), and head_dim 64
# prefill (Llama-3.2-1B's shape) against SDPA flash / cuDNN, with an ncu of the d64 prefill at 32k.
source tools/bench/gpu_dist_env.sh; R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
L="8192 32768 131072"
{ hdr "prefill attention, head_dim 64" "bench_attention_cuda --head-dim 64 $L -- 131072"; timeout 60 $D/bench_attention_cuda --head-dim 64 $L -- 131072; } > $R/attention_d64.jsonl 2>&1
grep -v "^#" $R/attention_d64.jsonl | cut -c1-170
{ hdr "SDPA peer, head_dim 64" "python3 tools/bench/attention_sdpa.py --head-dim 64 --prefill $L --decode 131072"; timeout 120 python3 tools/bench/attention_sdpa.py --head-dim 64 --prefill $L --decode 131072; } > $R/attention_sdpa_d64.jsonl 2>&1
grep -v "^#" $R/attention_sdpa_d64.jsonl | cut -c1-170; pack
S="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section SourceCounters --section LaunchStats --section ComputeWorkloadAnalysis"
{ hdr "ncu decode tc fp8 128k (5i)" "ncu -k regex:decode_tc -s 3 -c 1 $S --import-source yes bench_attention_cuda --fp8 -- 131072"; timeout 120 ncu -k regex:decode_tc -s 3 -c 1 $S --import-source yes -o $R/fp8 $D/bench_attention_cuda --fp8 -- 131072; } > $R/ncu_run_fp8.log 2>&1
ncu --import $R/fp8.ncu-rep --page details --print-details all > $R/details_fp8.txt 2>&1
ncu --import $R/fp8.ncu-rep --page source --csv --print-source sass > $R/sass_fp8.csv 2>/dev/null; xz $R/sass_fp8.csv; rm -f $R/fp8.ncu-rep
echo "== fp8"; grep -E "Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Issued Warp Per|No Eligible|Warp Cycles Per Issued|Stall (Long|Wait|Barrier|Short|MIO|Math|Not Sel|Dispatch|LG|No Inst|Branch)|Pipe (Alu|Fma|Tensor|Shared)" $R/details_fp8.txt | head -30; pack
{ hdr "ncu prefill v3 d64 32k" "ncu -k regex:prefill_v3 -s 1 -c 1 $S bench_attention_cuda --head-dim 64 32768"; timeout 150 ncu -k regex:prefill_v3 -s 1 -c 1 $S -o $R/d64 $D/bench_attention_cuda --head-dim 64 32768; } > $R/ncu_run_d64.log 2>&1
ncu --import $R/d64.ncu-rep --page details --print-details all > $R/details_d64.txt 2>&1; rm -f $R/d64.ncu-rep
echo "== d64"; grep -E "Duration|Registers Per|Issued Warp Per|No Eligible|Warp Cycles Per Issued|Stall (Long|Wait|Barrier|Short|MIO|Math|Not Sel|Dispatch|LG|No Inst|Branch|GMMA)|Pipe (Alu|Fma|Tensor|Shared|Xu)|Inst Executed Pipe Xu" $R/details_d64.txt | head -30; pack
