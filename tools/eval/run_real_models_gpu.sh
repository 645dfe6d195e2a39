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
# RULER's niah tasks on a plans directory: the arguments after MODEL LENGTH; then --policy "$(policies DIR)" -o OUT.
RULER=(eval ruler --device cuda --tasks niah_single,niah_multikey,niah_multivalue,niah_multiquery --samples "$samples"
       --haystack "$HAYSTACK" --batch-size 4 -q)
policies() { echo "full,$1/streaming.json,$1/tidal.json,$1/hylra.json,$1/retrieval.json,$1/hip.json"; }
stage gemma_16k 300 bash tools/eval/real_model_policies.sh $G $R/gemma_16384 16384 "$samples" 20,40,60,80 cuda
stage gemma_32k 500 bash tools/eval/real_model_policies.sh $G $R/gemma_32768 32768 "$samples" 20,40,60,80 cuda
stage gemma_ruler_32k 400 $LCLLM "${RULER[@]}" $G --lengths 32k --policy "$(policies $R/gemma_32768/plans)" -o $R/gemma_ruler_32k
stage smollm2_8k 300 bash tools/eval/real_model_policies.sh $S $R/smollm2_8192 8192 "$samples" 20,40,60,80 cuda
stage smollm2_ruler_8k 300 $LCLLM "${RULER[@]}" $S --lengths 8k --policy "$(policies $R/smollm2_8192/plans)" -o $R/smollm2_ruler_8k
stage gemma_ruler_16k 300 $LCLLM "${RULER[@]}" $G --lengths 16k --policy "$(policies $R/gemma_16384/plans)" -o $R/gemma_ruler_16k
for d in $R/*/niah $R/gemma_ruler_* $R/smollm2_ruler_*; do [ -f $d/comparison.md ] && { echo "== $d"; head -14 $d/comparison.md; }; done
# 4. HiP with decode masks of single keys (block_size_k 1 on the global layers 5, 11, 17 in decode; the same k keys)
#    against the preset's blocks of 2 on Gemma at 16k and 32k (SmolLM2 at 4k: 97.0% vs 93.9% retained, CPU).
for len in 16384 32768; do
  b=$((len / 8)) P=$R/gemma_$len/plans
  l="{\"phase\": \"decode\", \"policy\": {\"type\": \"HIP\", \"k\": $((b / 2)), \"block_size_q\": 32, \"block_size_k\": 1, \"sink\": 64, \"recent\": $((b / 2 - 64)), \"refresh_every\": 1}"
  [ -d $P ] && echo "{\"name\": \"hip_dec_bk1\", \"preset\": \"hip\", \"params\": {\"k\": $((b / 2)), \"block_size_k\": 2, \"sink\": 64, \"recent\": $((b / 2 - 64)), \"prefill_dense_below\": 0, \"decode_dense_below\": 0}, \"layers\": [{\"layers\": 5, ${l:1}}, {\"layers\": 11, ${l:1}}, {\"layers\": 17, ${l:1}}]}" > $P/hip_dec_bk1.json
  stage gemma_hip_bk1_$len 200 $LCLLM eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples "$samples" \
    --haystack "$HAYSTACK" --batch-size 4 --policy "full,$P/hip.json,$P/hip_dec_bk1.json" -o $R/gemma_hip_bk1_$len -q
done
for d in $R/gemma_hip_bk1_*; do [ -f $d/comparison.md ] && { echo "== $d"; head -14 $d/comparison.md; }; done
pack  # also when every stage was done earlier (a resumed call)
