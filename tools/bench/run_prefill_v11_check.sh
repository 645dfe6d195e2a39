#!/usr/bin/env bash
# One device call for prefill v11 (three consumer warpgroups at head_dim 64, docs/KERNEL_NOTES.md): the whole CUDA
# suite, racecheck and memcheck of the dense attention tests (the three-group turn barriers and Q in shared memory),
# prefill TFLOP/s at head_dim 64 and 128 of this build against the base build (dist/bench_attention_cuda_base,
# carried) and PyTorch SDPA flash / cuDNN at head_dim 64 in the same call, then Llama-3.2-1B's TTFT (full) with
# both builds' lcllm (dist/lcllm_base). Everything comes back as $OUT/r.tar.xz, packed after each stage.
# Carry gpu_carry/dist.tar.xz (tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz build/lcllm_base
# build/bench_attention_cuda_base) and gpu_carry/commit.txt.
#   bash tools/bench/run_prefill_v11_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M1=configs/models/llama-3.2-1b.json
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
{ hdr "CUDA tests: the whole suite" "test_cuda"; timeout 200 $D/test_cuda; echo "exit code: $?"; } > $R/tests_all.log 2>&1
grep -E "FAILED|failed|passed" $R/tests_all.log | tail -4; pack
T="cuda attention matches CPU: ragged*"
for tool in racecheck memcheck; do
  { hdr "$tool: the dense attention test" "compute-sanitizer --tool $tool test_cuda '$T'";
    timeout 100 compute-sanitizer --tool $tool $D/test_cuda "$T"; echo "exit code: $?"; } > $R/${tool}_attention.log 2>&1
  tail -2 $R/${tool}_attention.log; pack
done
L="8192 32768 131072"
for hd in 64 128; do
  for b in bench_attention_cuda bench_attention_cuda_base; do
    { hdr "prefill attention, head_dim $hd, $b" "$b --head-dim $hd $L"; timeout 60 $D/$b --head-dim $hd $L; } > $R/prefill_d${hd}_$b.jsonl 2>&1
    echo "== d $hd $b"; grep -v "^#" $R/prefill_d${hd}_$b.jsonl | grep -o '"tokens":[0-9]*,"ms":[0-9.]*,"tflops":[0-9.]*' 
  done
done
pack
{ hdr "SDPA peer, head_dim 64" "python3 tools/bench/attention_sdpa.py --prefill $L --decode --head-dim 64";
  timeout 90 python3 tools/bench/attention_sdpa.py --prefill $L --decode --head-dim 64; } > $R/sdpa_d64.jsonl 2>&1
grep -v "^#" $R/sdpa_d64.jsonl | cut -c1-160; pack
for b in lcllm lcllm_base; do
  { hdr "Llama-3.2-1B TTFT, $b" "$b bench $M1 --device cuda --policy full --prefill 32k,128k --decode 4k --decode-steps 8";
    timeout 60 $D/$b bench $M1 --device cuda --policy full --prefill 32k,128k --decode 4k --decode-steps 8 --json $R/e2e_1b_$b.json -q
    echo "exit code: $?"; } > $R/e2e_1b_$b.log 2>&1
  echo "== $b"; grep -A4 "TTFT" $R/e2e_1b_$b.log | head -5; pack
done
