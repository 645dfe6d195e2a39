#!/usr/bin/env bash
# E11's needle target with the Hadamard-rotated fp8 cache (session 26) on the GPU: Gemma 3 270M, full attention,
# bf16 and fp8 KV over the license haystack — 4k with the generator seeds 0, 1 and 2 (64 prompts each: the CPU sets
# of bench/results/niah_gemma3_270m_kv_dtype_*), then 16k and 32k (16 prompts each). Needs the model uploaded in
# parts to /tmp/up/g.gguf.partNN (tools/bench/gpu_upload_parts.sh; sha256 a5fd3b62…); carries gpu_carry/
# (dist.tar.xz, commit.txt, haystack.txt); everything comes back as $OUT/r.tar.xz, packed after each cell.
#   bash tools/eval/run_kv_dtype_rotated_gpu.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R /tmp/models
G=/tmp/models/gemma-3-270m-q4_k_m.gguf H=$PWD/gpu_carry/haystack.txt
cat /tmp/up/g.gguf.part* > $G
sha256sum $G | grep -q ^a5fd3b62230aa5ec || { echo "error: $G is not the Gemma 3 270M upload (sha256 a5fd3b62…)"; exit 2; }
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
cell() {  # cell LEN SAMPLES SEED DTYPE
  local n=gemma_$1_seed$3_$4
  { hdr "gemma $1 seed $3 $4" "lcllm eval niah $G --device cuda --lengths $1 --depths 20,40,60,80 --samples $2 --seed $3 --batch-size 4 --kv-cache-dtype $4 --policy full";
    timeout 150 $D/lcllm eval niah $G --device cuda --lengths $1 --depths 20,40,60,80 --samples $2 --seed $3 --haystack $H \
      --batch-size 4 --kv-cache-dtype $4 --policy full -o $R/$n -q; echo "exit code: $?"; } > $R/$n.log 2>&1
  echo "$n: $(grep '^| full' $R/$n.log) $(tail -1 $R/$n.log)"; pack
}
for seed in 0 1 2; do for dt in bf16 fp8; do cell 4096 16 $seed $dt; done; done
for len in 16384 32768; do for dt in bf16 fp8; do cell $len 4 0 $dt; done; done
