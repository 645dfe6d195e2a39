#!/usr/bin/env bash
# One device call after prefill v11 (three consumer warpgroups at head_dim 64): (1) prefill TFLOP/s at head_dim 128
# and 64 of this build against an experiment build carried as dist/bench_attention_cuda_EXP (session 25: d128g3,
# three groups at head_dim 128 with 64-key tiles); (2) Llama-3.1-8B TTFT (full) of this build and dist/lcllm_EXP;
# (3) Llama-3.2-1B TTFT (full) of this build at --chunk-size 4096 (the default) and 8192 (a v11 tile is 48
# positions x 4 heads, so a 4096-row chunk is 5.2 waves of CTAs on 132 SMs, rounded up to 6) against transformers
# (SDPA, one forward over the whole prompt) in the same call. Results packed into $OUT/r.tar.xz after each stage.
# Carry gpu_carry/dist.tar.xz (make_gpu_dist.sh OUT build/bench_attention_cuda_EXP build/lcllm_EXP) and commit.txt.
#   EXP=d128g3 bash tools/bench/run_prefill_groups_ab.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
L="8192 32768 131072" X=${EXP:-}
for hd in 128 64; do
  for b in bench_attention_cuda ${X:+bench_attention_cuda_$X}; do
    { hdr "prefill attention, head_dim $hd, $b" "$b --head-dim $hd $L"; timeout 60 $D/$b --head-dim $hd $L; } > $R/prefill_d${hd}_$b.jsonl 2>&1
    echo "== d $hd $b"; grep -v "^#" $R/prefill_d${hd}_$b.jsonl | grep -o '"tokens":[0-9]*,"ms":[0-9.]*,"tflops":[0-9.]*'
  done
done
pack
for b in lcllm ${X:+lcllm_$X}; do
  { hdr "Llama-3.1-8B TTFT, $b" "$b bench $M8 --device cuda --policy full --prefill 32k,128k --decode 4k --decode-steps 4";
    timeout 100 $D/$b bench $M8 --device cuda --policy full --prefill 32k,128k --decode 4k --decode-steps 4 --json $R/e2e_8b_$b.json -q
    echo "exit code: $?"; } > $R/e2e_8b_$b.log 2>&1
  echo "== 8B $b"; grep -A2 "TTFT" $R/e2e_8b_$b.log | tail -2; pack
done
for cs in 4096 8192; do
  { hdr "Llama-3.2-1B TTFT, chunk $cs" "lcllm bench $M1 --device cuda --policy full --prefill 32k,128k --decode 4k --decode-steps 4 --chunk-size $cs";
    timeout 60 $D/lcllm bench $M1 --device cuda --policy full --prefill 32k,128k --decode 4k --decode-steps 4 --chunk-size $cs --json $R/e2e_1b_chunk$cs.json -q
    echo "exit code: $?"; } > $R/e2e_1b_chunk$cs.log 2>&1
  echo "== 1B chunk $cs"; grep -A2 "TTFT" $R/e2e_1b_chunk$cs.log | tail -2; pack
done
{ hdr "transformers, Llama-3.2-1B" "python3 tools/bench/e2e_transformers.py $M1 --prefill 32k,128k --decode 4k --decode-steps 2";
  timeout 120 python3 tools/bench/e2e_transformers.py $M1 --prefill 32k,128k --decode 4k --decode-steps 2 --json $R/hf_1b.json 2>&1 | grep -v Warning; } > $R/hf_1b.log 2>&1
tail -6 $R/hf_1b.log; pack
