#!/usr/bin/env bash
# HiP's dense_tail on a real model, on the GPU: Gemma 3 270M at 16k and 32k over the license haystack, 4 depths x
# SAMPLES prompts per length, the 8x budget of tools/eval/real_model_policies.sh (k = L/16 in blocks of 2, sink 64,
# recent L/16 - 64, masks every decode step, thresholds 0) without the tail (`hip`, dense_tail 0) and with the
# preset's 64 rows (`hip_tail64`), the tail with query blocks of 64 (`hip_tail64_bq64`: half the prefill
# searches), the tail with dense decode (`hip_tail64_decdense`: separates what the prefill masks lose from what the
# decode masks lose) and a 256-row tail (`hip_tail256`). `full` and `hip` resume from the committed cells of session 22's H100 run
# (bench/results/niah_hip_stages_gemma3_270m_gpu_h100_2026-12-07/: same prompts, plans and haystack; a cell whose
# parameters differ is redone), so only the tail plans run. Needs /tmp/models/gemma-3-270m-q4_k_m.gguf on the device
# (tools/bench/gpu_upload_parts.sh) and carries gpu_carry/ (dist.tar.xz, commit.txt, haystack.txt); everything comes
# back as $OUT/r.tar.xz.
# FRESH=1 reruns every cell with this build (no resume from session 22's cells; the check of a new build) and
# PLANS (default: all six) names the plans to run, e.g. PLANS="full hip_tail64 hip_tail64_decdense".
#   [FRESH=1] [PLANS="..."] SAMPLES=8 bash tools/eval/run_hip_tail_gpu.sh
source tools/bench/gpu_dist_env.sh
samples=${SAMPLES:-8}
R=/tmp/r; rm -rf $R; mkdir -p $R
G=/tmp/models/gemma-3-270m-q4_k_m.gguf H=$PWD/gpu_carry/haystack.txt
PREV=bench/results/niah_hip_stages_gemma3_270m_gpu_h100_2026-12-07
for len in 16384 32768; do
  b=$((len / 8)) P=$R/plans_$len O=$R/gemma_$len; mkdir -p $P $O
  base="\"k\": $((b / 2)), \"block_size_k\": 2, \"sink\": 64, \"recent\": $((b / 2 - 64)), \"prefill_dense_below\": 0, \"decode_dense_below\": 0"
  echo "{\"name\": \"hip\", \"preset\": \"hip\", \"params\": {$base, \"dense_tail\": 0}}" > $P/hip.json
  echo "{\"name\": \"hip_tail64\", \"preset\": \"hip\", \"params\": {$base, \"dense_tail\": 64}}" > $P/hip_tail64.json
  echo "{\"name\": \"hip_tail64_bq64\", \"preset\": \"hip\", \"params\": {$base, \"dense_tail\": 64, \"block_size_q\": 64}}" > $P/hip_tail64_bq64.json
  echo "{\"name\": \"hip_tail64_decdense\", \"preset\": \"hip\", \"params\": {${base/\"decode_dense_below\": 0/\"decode_dense_below\": 100000000}, \"dense_tail\": 64}}" > $P/hip_tail64_decdense.json
  echo "{\"name\": \"hip_tail256\", \"preset\": \"hip\", \"params\": {$base, \"dense_tail\": 256}}" > $P/hip_tail256.json
  [ -z "$FRESH" ] && cp -r $PREV/gemma_$len/full $PREV/gemma_$len/hip $O/
  pol=""
  for name in ${PLANS:-full hip hip_tail64 hip_tail64_bq64 hip_tail64_decdense hip_tail256}; do
    [ "$name" = full ] && pol="$pol,full" || pol="$pol,$P/$name.json"
  done
  pol=${pol#,}
  { hdr "gemma $len" "lcllm eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples $samples --policy $pol";
    timeout 280 $D/lcllm eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples $samples --haystack $H \
      --batch-size 4 --policy "$pol" -o $O -q; echo "exit code: $?"; } > $R/gemma_$len.log 2>&1
  echo "gemma $len: $(grep -o '[0-9]* cells ([0-9]* resumed)' $R/gemma_$len.log)"; grep -A7 "| policy" $R/gemma_$len.log | head -20
  tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz
done
