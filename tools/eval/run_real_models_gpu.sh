#!/usr/bin/env bash
# E10 item 7 on the GPU: every policy at 8x sparsity on the real models, one or more device calls after the model
# upload (tools/bench/gpu_upload_parts.sh, reassembled into /tmp/models/ on the device):
#   1. Gemma 3 270M at 16k and 32k over the license haystack (tools/eval/real_model_policies.sh: natural-text
#      calibration, string match and the value's teacher-forced log-probability);
#   2. RULER's niah tasks on Gemma at 32k and 16k with those plans;
#   3. SmolLM2-135M at 8k, passkeys and RULER.
# Stages are resumable: each writes under /tmp/r and is marked done when it finishes; `lcllm eval` resumes cells a
# killed stage had finished, so a second call on the same machine (within ~30 s: /tmp stays) carries on. The call's
# time is BUDGET seconds (default 570). Carry gpu_carry/ (dist.tar.xz, commit.txt, haystack.txt: the license
# haystack made here, sha256 1e54acdc…, so prompts equal the CPU runs'); everything comes back as $OUT/r.tar.xz.
#   SAMPLES=4 bash tools/eval/run_real_models_gpu.sh
source tools/bench/gpu_dist_env.sh
samples=${SAMPLES:-4}
start=$(date +%s); budget=${BUDGET:-570}
R=/tmp/r; mkdir -p $R
export LCLLM=$D/lcllm HAYSTACK=$PWD/gpu_carry/haystack.txt
G=/tmp/models/gemma-3-270m-q4_k_m.gguf S=/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf
pack() { tar -C /tmp --exclude='*/haystack.txt' -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
# stage NAME MAX_SECONDS COMMAND...: runs COMMAND unless NAME is done, for at most MAX_SECONDS and what the call has left.
stage() {
  local name=$1 max=$2; shift 2
  [ -f $R/$name.done ] && { echo "$name: done earlier"; return; }
  local left=$((budget - ($(date +%s) - start) - 20))
  local t=$((max < left ? max : left))
  (( t < 30 )) && { echo "$name: no time left"; return; }
  { hdr "$name" "$*"; timeout $t "$@"; echo "exit code: $?"; } >> $R/$name.log 2>&1
  tail -1 $R/$name.log | grep -q "exit code: 0" && touch $R/$name.done
  echo "$name: $(tail -1 $R/$name.log) after $(($(date +%s) - start)) s"; pack
}
ruler() {  # ruler MODEL LENGTH PLANS_DIR OUT
  $LCLLM eval ruler "$1" --device cuda --tasks niah_single,niah_multikey,niah_multivalue,niah_multiquery --lengths "$2" \
    --samples "$samples" --haystack "$HAYSTACK" --batch-size 4 -o "$4" -q \
    --policy "full,$3/streaming.json,$3/tidal.json,$3/hylra.json,$3/retrieval.json,$3/hip.json"
}
stage gemma_16k 300 bash tools/eval/real_model_policies.sh $G $R/gemma_16384 16384 "$samples" 20,40,60,80 cuda
stage gemma_32k 500 bash tools/eval/real_model_policies.sh $G $R/gemma_32768 32768 "$samples" 20,40,60,80 cuda
stage gemma_ruler_32k 400 ruler $G 32k $R/gemma_32768/plans $R/gemma_ruler_32k
stage smollm2_8k 300 bash tools/eval/real_model_policies.sh $S $R/smollm2_8192 8192 "$samples" 20,40,60,80 cuda
stage smollm2_ruler_8k 300 ruler $S 8k $R/smollm2_8192/plans $R/smollm2_ruler_8k
stage gemma_ruler_16k 300 ruler $G 16k $R/gemma_16384/plans $R/gemma_ruler_16k
for d in $R/*/niah $R/gemma_ruler_* $R/smollm2_ruler_*; do [ -f $d/comparison.md ] && { echo "== $d"; head -14 $d/comparison.md; }; done
