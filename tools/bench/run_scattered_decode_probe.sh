#!/usr/bin/env bash
# One device call for KERNEL_NOTES 6g's open question (why a cached HiP step's ~3k scattered keys per KV head cost
# 35-75 us per layer in the key-set decode kernel when 3,072 contiguous keys cost 12.5 us):
#   1. tools/bench/dev/gather_probe.cu: the gather alone (no attention math), contiguous vs blocks of 2 vs blocks of
#      16, over 32k / 128k / 512k-token pools, chained vs gather-shaped CTAs;
#   2. ncu of the production kernel in a cached hip-all-layers-refresh8 step (8B, 32k and 512k): duration against
#      the SMs' active cycles (average, min, max: a long tail of a few CTAs shows as max >> avg) and the stall reasons.
# Carry gpu_carry/dist.tar.xz (bench_sparse_attention + gather_probe, tools/bench/make_gpu_dist.sh) and
# gpu_carry/commit.txt. Results: $OUT/r.tar.xz.
#   bash tools/bench/run_scattered_decode_probe.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json
{ hdr "gather probe: contiguous / blocks of 2 / blocks of 16 keys, chained vs gather CTAs" "gather_probe";
  timeout 150 $D/gather_probe; echo "exit code: $?"; } > $R/gather_probe.jsonl 2>&1
grep -v "^#" $R/gather_probe.jsonl | sed 's/"card": "[^"]*", //' ; pack
for ctx in 32k 512k; do
  { hdr "ncu: key-set decode kernel in a cached hip-all-layers-refresh8 step, 8B $ctx" \
        "ncu --metrics sm__cycles_active.{avg,min,max},gpu__time_duration.sum --section WarpStateStats -k regex:decode_tc|hip_lists|decode_merge -s 150 -c 3 bench_sparse_attention $M8 $ctx hip-all-layers-refresh8 2";
    timeout 120 ncu --metrics sm__cycles_active.avg,sm__cycles_active.min,sm__cycles_active.max,gpu__time_duration.sum,sm__cycles_elapsed.max \
      --section WarpStateStats -k "regex:decode_tc|hip_lists|decode_merge" -s 150 -c 3 \
      $D/bench_sparse_attention $M8 $ctx configs/policies/hip-all-layers-refresh8.json 2; echo "exit code: $?"; } > $R/ncu_tail_$ctx.txt 2>&1
  grep -E "^  [a-z].*\(|sm__cycles|gpu__time|Stall|Warp Cycles" $R/ncu_tail_$ctx.txt | cut -c1-140 | head -30; pack
done
