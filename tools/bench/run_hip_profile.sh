#!/usr/bin/env bash
# Where a HiP decode step's time goes on the GPU (E9 item 3): ncu's per-kernel summary of one hip decode step (8B
# shape at 32k), ncu sections (speed of light, occupancy, launch incl. clusters, warp stalls, source hot spots) of
# one decode mask search at 32k and at 1M (1B shape), and attention-only timings of bench_sparse_attention builds
# carried as gpu_carry/var.tar.xz (var/bench_* plus the shared libraries; variants named by their suffix, see the
# results README). Everything comes back as $OUT/r.tar.xz.
export LD_LIBRARY_PATH=/tmp/var:/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
tar -xJf gpu_carry/var.tar.xz -C /tmp && V=/tmp/var
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
hdr() { echo "# $1"; echo "# card: $card"; echo "# date: $(date -u +%FT%TZ)"; echo "# commit: $(cat gpu_carry/commit.txt)"; echo "# command: $2"; }
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
for v in $V/bench_*; do
  n=${v##*/bench_}
  { hdr "attention-only, variant $n" "bench_$n $M 32k,128k full,hip 5; bench_$n $M1 1m full,hip 5"; timeout 40 $v $M 32k,128k full,hip 5; timeout 30 $v $M1 1m full,hip 5; } > $R/attention_$n.jsonl 2>&1
  echo "== $n"; grep -v "^#" $R/attention_$n.jsonl | grep -o '"context": [0-9]*, "policy": "[a-z]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/'
done
pack
S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section SourceCounters"
{ hdr "ncu per-kernel summary, hip decode 8B 32k" "ncu --print-summary per-kernel --metrics gpu__time_duration.sum -c 600 bench_A $M 32k hip 1"; timeout 120 ncu --print-summary per-kernel --metrics gpu__time_duration.sum -c 600 $V/bench_A $M 32k hip 1; } > $R/ncu_summary_32k.txt 2>&1
grep -E "^  [a-z_]|gpu__time_duration" $R/ncu_summary_32k.txt | head -40
pack
{ hdr "ncu sections, one decode mask search, 8B 32k" "ncu -k regex:attention_hip_mask -s 30 -c 1 $S bench_A $M 32k hip 2"; timeout 100 ncu -k regex:attention_hip_mask -s 30 -c 1 $S $V/bench_A $M 32k hip 2; } > $R/ncu_mask_32k.txt 2>&1
grep -E "Duration|Cluster|Grid Size|Block Size|Registers|Throughput|Achieved Occ|Theoretical Occ|Stall|Issued Ipc" $R/ncu_mask_32k.txt | head -30
pack
{ hdr "ncu sections, one decode mask search, 1B 1M" "ncu -k regex:attention_hip_mask -s 14 -c 1 $S bench_A $M1 1m hip 2"; timeout 100 ncu -k regex:attention_hip_mask -s 14 -c 1 $S $V/bench_A $M1 1m hip 2; } > $R/ncu_mask_1m.txt 2>&1
grep -E "Duration|Cluster Size|Grid Size" $R/ncu_mask_1m.txt | head -6
pack
