#!/usr/bin/env bash
# E10 item 7 on the H200, one device call after the uploads (tools/bench/gpu_upload_parts.sh): every policy at 8x
# sparsity on Gemma 3 270M at 16k and 32k over the license haystack (tools/eval/real_model_policies.sh: natural-text
# calibration, string match and the value's teacher-forced log-probability), then RULER's niah tasks at 16k on the
# same plans. Run from the repository root with gpu_carry/dist.tar.xz, gpu_carry/commit.txt carried and
# /tmp/gemma.gguf reassembled on the device; everything comes back as $OUT/r.tar.xz.
#   bash tools/eval/run_real_models_gpu.sh [SAMPLES]
source tools/bench/gpu_dist_env.sh
samples=${1:-2}
R=/tmp/r; rm -rf $R; mkdir -p $R
export LCLLM=$D/lcllm
for len in 16384 32768; do
  timeout 250 bash tools/eval/real_model_policies.sh /tmp/gemma.gguf $R/gemma_$len $len "$samples" 20,40,60,80 cuda > $R/gemma_$len.log 2>&1
  echo "gemma $len exit $?"; head -12 $R/gemma_$len/niah/comparison.md 2>/dev/null
done
P=$R/gemma_16384/plans
timeout 80 $D/lcllm eval ruler /tmp/gemma.gguf --device cuda --tasks niah_single,niah_multikey,niah_multivalue,niah_multiquery \
  --lengths 16k --samples "$samples" --haystack $R/gemma_16384/haystack.txt \
  --policy "full,$P/streaming.json,$P/tidal.json,$P/hylra.json,$P/retrieval.json,$P/hip.json" -o $R/ruler_16k -q > $R/ruler.log 2>&1
echo "ruler exit $?"; cat $R/ruler_16k/summary.csv 2>/dev/null | head -20
rm -f $R/*/haystack.txt
tar -C /tmp -cJf $OUT/r.tar.xz r
