#!/usr/bin/env bash
# E11 item 3's needle target on the real models, on the GPU: Gemma 3 270M at 4k / 16k / 32k over the license haystack,
# full attention, the hip preset and hip with masks refreshed every 8th decode step, each with a bf16 and an fp8 KV
# cache (4 depths x SAMPLES prompts per cell; SAMPLES=4 took 195 s on an H100). Compare the runs with tools/eval/retained_between_runs.py. Needs
# /tmp/models/gemma-3-270m-q4_k_m.gguf on the device (the upload of tools/eval/run_real_models_gpu.sh) and carries
# gpu_carry/ (dist.tar.xz, commit.txt, haystack.txt); everything comes back as $OUT/r.tar.xz.
# DTYPES picks the KV dtypes (default "bf16 fp8"; DTYPES=bf16 for the policies alone).
#   SAMPLES=4 bash tools/eval/run_kv_dtype_gpu.sh
source tools/bench/gpu_dist_env.sh
samples=${SAMPLES:-4}
R=/tmp/r; rm -rf $R; mkdir -p $R
G=/tmp/models/gemma-3-270m-q4_k_m.gguf H=$PWD/gpu_carry/haystack.txt
for len in 4096 16384 32768; do
  b=$((len / 8)) P=$R/plans_$len; mkdir -p $P  # the 8x budget of tools/eval/real_model_policies.sh
  for r in 1 8; do
    n=hip; [ $r = 8 ] && n=hip_refresh8
    echo "{\"name\": \"$n\", \"preset\": \"hip\", \"params\": {\"k\": $((b / 2)), \"block_size_k\": 2, \"sink\": 64, \"recent\": $((b / 2 - 64)), \"refresh_every\": $r, \"prefill_dense_below\": 0, \"decode_dense_below\": 0}}" > $P/$n.json
  done
  for dt in ${DTYPES:-bf16 fp8}; do
    { hdr "gemma $len $dt" "lcllm eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples $samples --kv-cache-dtype $dt --policy full,hip,hip_refresh8";
      timeout 200 $D/lcllm eval niah $G --device cuda --lengths $len --depths 20,40,60,80 --samples $samples --haystack $H \
        --batch-size 4 --kv-cache-dtype $dt --policy "full,$P/hip.json,$P/hip_refresh8.json" -o $R/gemma_${len}_$dt -q; echo "exit code: $?"; } > $R/gemma_${len}_$dt.log 2>&1
    echo "gemma $len $dt: $(tail -1 $R/gemma_${len}_$dt.log)"
    tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz  # after each cell: a call cut short keeps them
  done
done
