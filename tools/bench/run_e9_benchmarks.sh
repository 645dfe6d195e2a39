#!/usr/bin/env bash
# E9 item 6 in two device calls on one machine (one card, one commit; call `kernels` then `e2e` within ~30 s so the
# machine stays): every benchmark the issue lists, each stage packed into $OUT/r.tar.xz as it finishes so a call cut
# short keeps what ran. Each part's timeouts add up to under 500 s.
#   1. attention kernels: prefill TFLOP/s at 8k / 32k / 128k and decode TB/s at 32k / 128k / 512k / 1M
#      (bench_attention_cuda; 32 / 8 heads, head_dim 128, bf16 paged cache), fp8 decode at the same lengths, and
#      PyTorch SDPA flash and cuDNN on the same shapes (tools/bench/attention_sdpa.py);
#   2. `--policy hip` against own dense, attention only, all layers: Llama-3.1-8B at 32k / 128k / 512k, Llama-3.2-1B
#      at 1M (bench_sparse_attention);
#   3. end to end, random weights in real shapes: `lcllm bench` (TTFT at 32k / 128k, decode at 32k / 128k, full and
#      hip) and transformers (tools/bench/e2e_transformers.py, dense SDPA) for Llama-3.1-8B and Llama-3.2-1B.
# Carry gpu_carry/ (dist.tar.xz from tools/bench/make_gpu_dist.sh, commit.txt).
#   bash tools/bench/run_e9_benchmarks.sh kernels     (stages 1 and 2)
#   bash tools/bench/run_e9_benchmarks.sh e2e         (stage 3)
part=${1:?usage: $0 kernels|e2e}
[[ $part == kernels || $part == e2e ]] || { echo "error: part '$part' is neither kernels nor e2e" >&2; exit 2; }
source tools/bench/gpu_dist_env.sh
R=/tmp/r_$part; rm -rf $R; mkdir -p $R; M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json
pack() { tar -C /tmp -cJf $OUT/r.part r_$part && mv $OUT/r.part $OUT/r_$part.tar.xz; }
P="8192 32768 131072" DEC="32768 131072 524288 1048576"
if [[ $part == kernels ]]; then
{ hdr "attention kernels, bf16" "bench_attention_cuda $P -- $DEC"; timeout 120 $D/bench_attention_cuda $P -- $DEC; } > $R/attention_bf16.jsonl 2>&1
{ hdr "decode attention, fp8 KV" "bench_attention_cuda --fp8 -- $DEC"; timeout 60 $D/bench_attention_cuda --fp8 -- $DEC; } > $R/attention_fp8.jsonl 2>&1
grep -hv "^#" $R/attention_bf16.jsonl $R/attention_fp8.jsonl | cut -c1-200; pack
{ hdr "SDPA peer" "python3 tools/bench/attention_sdpa.py --prefill $P --decode $DEC"; timeout 150 python3 tools/bench/attention_sdpa.py --prefill $P --decode $DEC; } > $R/attention_sdpa.jsonl 2>&1
grep -v "^#" $R/attention_sdpa.jsonl | cut -c1-200; pack
{ hdr "attention only, all layers: full vs hip" "bench_sparse_attention $M8 32k,128k,512k full,hip 5; bench_sparse_attention $M1 1m full,hip 5";
  timeout 90 $D/bench_sparse_attention $M8 32k,128k,512k full,hip 5; timeout 60 $D/bench_sparse_attention $M1 1m full,hip 5; } > $R/attention_hip.jsonl 2>&1
grep -v "^#" $R/attention_hip.jsonl | grep -o '"context": [0-9]*, "policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/'; pack
exit 0
fi
for m in $M8 $M1; do
  n=$(basename $m .json); t_lcllm=160 t_hf=140; [ $m = $M1 ] && t_lcllm=80 t_hf=100
  { hdr "lcllm end to end, $n" "lcllm bench $m --device cuda --policy full,hip --prefill 32k,128k --decode 32k,128k --decode-steps 8";
    timeout $t_lcllm $D/lcllm bench $m --device cuda --policy full,hip --prefill 32k,128k --decode 32k,128k --decode-steps 8 --json $R/lcllm_$n.json -q; } > $R/lcllm_$n.log 2>&1
  tail -9 $R/lcllm_$n.log; pack
  { hdr "transformers end to end, $n" "python3 tools/bench/e2e_transformers.py $m --prefill 32k,128k --decode 32k,128k --decode-steps 8";
    timeout $t_hf python3 tools/bench/e2e_transformers.py $m --prefill 32k,128k --decode 32k,128k --decode-steps 8 --json $R/hf_$n.json 2>&1 | grep -v Warning; } > $R/hf_$n.log 2>&1
  tail -6 $R/hf_$n.log; pack
done
