#!/usr/bin/env bash
# Follow-up of run_scattered_decode_probe.sh: the key-set decode kernel of a cached HiP step runs ~28 us per layer
# (8B, 32k and 512k alike) while most SMs are busy for ~6 us of it (sm__cycles_active min ~8.4k, max ~37k cycles):
# a tail of a few CTAs, not the memory system (the gather alone, tools/bench/dev/gather_probe.cu, takes 8 us for
# the same keys at every span). Which sets have the tail (ncu tail metrics of kernel_attention_decode_tc):
#   streaming-3k (3,072 contiguous keys), hip-all-layers (a searching step: undilated lists), hip-all-layers-refresh8
#   (a cached step: dilated lists); then source-level stall sampling of the cached step's kernel (-lineinfo build).
# Carry gpu_carry/dist.tar.xz and gpu_carry/commit.txt. Results: $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json
{ hdr "CUDA tests: sparse, hip" "test_cuda [sparse],[hip]"; timeout 150 $D/test_cuda "[sparse],[hip]"; echo "exit code: $?"; } > $R/tests.log 2>&1
tail -3 $R/tests.log
MET=sm__cycles_active.avg,sm__cycles_active.min,sm__cycles_active.max,gpu__time_duration.sum,sm__cycles_elapsed.max,smsp__inst_executed.sum,smsp__inst_executed.max,sm__ctas_launched.max,sm__ctas_launched.min
for plan in tools/bench/plans/streaming-3k.json configs/policies/hip-all-layers.json configs/policies/hip-all-layers-refresh8.json; do
  n=$(basename $plan .json)
  { hdr "ncu tail metrics: decode_tc, 8B 32k, $n" "ncu --metrics $MET -k regex:decode_tc -s 150 -c 2 bench_sparse_attention $M8 32k $plan 2";
    timeout 100 ncu --metrics $MET -k regex:decode_tc -s 150 -c 2 $D/bench_sparse_attention $M8 32k $plan 2; echo "exit code: $?"; } > $R/tail_$n.txt 2>&1
  echo "== $n"; grep -E "^  [a-z].*\(|sm__|smsp__|gpu__time" $R/tail_$n.txt | cut -c1-110 | head -12; pack
done
{ hdr "ncu source counters: decode_tc in a cached hip-all-layers-refresh8 step, 8B 32k" "ncu --section SourceCounters --section WarpStateStats --import-source yes -k regex:decode_tc -s 150 -c 1 -o cached bench_sparse_attention $M8 32k hip-all-layers-refresh8 2";
  timeout 150 ncu --section SourceCounters --section WarpStateStats --import-source yes -k regex:decode_tc -s 150 -c 1 -o $R/cached \
    $D/bench_sparse_attention $M8 32k configs/policies/hip-all-layers-refresh8.json 2; echo "exit code: $?"; } > $R/source_run.log 2>&1
tail -2 $R/source_run.log
ncu --import $R/cached.ncu-rep --page source --csv --print-source cuda > $R/source_cuda.csv 2> $R/source_cuda.err; wc -l $R/source_cuda.csv
ncu --import $R/cached.ncu-rep --page details --print-details all > $R/details.txt 2>&1; grep -iE "stall|Duration" $R/details.txt | head -20
rm -f $R/cached.ncu-rep; pack
