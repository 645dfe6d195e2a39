#!/usr/bin/env bash
# Source-level stall sampling of one HiP decode mask search (8B shape, 32k): ncu's SourceCounters and WarpStateStats
# with the per-instruction page (CUDA source and SASS), for a bench_sparse_attention whose kernels/attention_hip.cu
# was compiled with -lineinfo. Carry gpu_carry/dist_prof.tar.xz (dist/: bench_sparse_attention + shared libraries)
# and gpu_carry/commit.txt; everything comes back as $OUT/r.tar.xz.
tar -xJf gpu_carry/dist_prof.tar.xz -C /tmp && D=/tmp/dist && export LD_LIBRARY_PATH=$D:/usr/local/cuda/lib64 PATH=$PATH:/usr/local/cuda/bin
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json
echo "# commit: $(cat gpu_carry/commit.txt), card: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" > $R/header.txt
timeout 150 ncu -k regex:attention_hip_mask -s 30 -c 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight \
  --import-source yes -o $R/mask_32k $D/bench_sparse_attention $M 32k hip 2 > $R/ncu_run.log 2>&1; tail -3 $R/ncu_run.log
ncu --import $R/mask_32k.ncu-rep --page source --csv --print-source cuda > $R/source_cuda.csv 2> $R/source_cuda.err; wc -l $R/source_cuda.csv; head -c 600 $R/source_cuda.err
ncu --import $R/mask_32k.ncu-rep --page source --csv --print-source sass > $R/source_sass.csv 2> $R/source_sass.err; wc -l $R/source_sass.csv
ncu --import $R/mask_32k.ncu-rep --page details --print-details all > $R/details.txt 2>&1; grep -iE "stall|Duration" $R/details.txt | head -30
tar -C /tmp -cJf $OUT/r.tar.xz r
