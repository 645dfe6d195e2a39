#!/usr/bin/env bash
# HiP's stage-wise refresh on a real model, on the GPU: Gemma 3 270M at 16k and 32k over the license haystack, 4
# depths x SAMPLES prompts per length; full, hip (8x budget of tools/eval/real_model_policies.sh: k = L/16 in blocks
# of 2, sink 64, recent L/16 - 64, masks every decode step), the same with the coarse stage kept every 8 steps and
# resumed between (hip_c8), masks every 2 steps resumed from a stage kept every 16 (hip_r2_c16), and masks every 8
# steps (hip_refresh8). Coarse pieces of at most 8 keys: with this budget the search's chunks are ~16 blocks of 2, so
# the stage skips the first 2 of its 4 rounds (the default 64-key pieces would keep no stage). Thresholds 0: the
# sparse rule at every length. Needs /tmp/models/gemma-3-270m-q4_k_m.gguf on the device (tools/bench/gpu_upload_parts.sh)
# and carries gpu_carry/ (dist.tar.xz, commit.txt, haystack.txt); everything comes back as $OUT/r.tar.xz. Compare the
# policies with tools/eval/retained_between_runs.py.
#   SAMPLES=8 bash tools/eval/run_hip_stages_gpu.sh
source tools/bench/gpu_dist_env.sh
samples=${SAMPLES:-8}
R=/tmp/r; rm -rf $R; mkdir -p $R
G=/tmp/models/gemma-3-270m-q4_k_m.gguf H=$PWD/gpu_carry/haystack.txt
for len in 16384 32768; do
  b=$((len / 8)) P=$R/plans_$len; mkdir -p $P
  base="\"k\": $((b / 2)), \"block_size_k\": 2, \"sink\": 64, \"recent\": $((b / 2 - 64)), \"prefill_dense_below\": 0, \"decode_dense_below\": 0"
  echo "{\"name\": \"hip\", \"preset\": \"hip\", \"params\": {$base}}" > $P/hip.json
  echo "{\"name\": \"hip_c8\", \"preset\": \"hip\", \"params\": {$base, \"coarse_refresh_every\": 8, \"coarse_piece_keys\": 8}}" > $P/hip_c8.json
  echo "{\"name\": \"hip_r2_c16\", \"preset\": \"hip\", \"params\": {$base, \"refresh_every\": 2, \"coarse_refresh_every\": 16, \"coarse_piece_keys\": 8}}" > $P/hip_r2_c16.json
  echo "{\"name\": \"hip_refresh8\", \"preset\": \"hip\", \"params\": {$base, \"refresh_every\": 8}}" > $P/hip_refresh8.json
  { hdr "gemma $len" "lcllm eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples $samples --policy full,hip,hip_c8,hip_r2_c16,hip_refresh8";
    timeout 280 $D/lcllm eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples $samples --haystack $H \
      --batch-size 4 --policy "full,$P/hip.json,$P/hip_c8.json,$P/hip_r2_c16.json,$P/hip_refresh8.json" -o $R/gemma_$len -q; echo "exit code: $?"; } > $R/gemma_$len.log 2>&1
  echo "gemma $len: $(tail -1 $R/gemma_$len.log)"; tail -9 $R/gemma_$len.log | head -8
  tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz
done
