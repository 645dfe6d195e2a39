#!/usr/bin/env bash
# Session 10's one device call when only one fits the device budget, most important first: HiP on the GPU (the full
# CUDA suite, attention-only hip / hip-refresh8 / hip-all-layers vs dense, end-to-end hip on the 8B shape, memcheck),
# then E11's prefix-caching TTFT at 64k (random 8B weights made on the device, the real Llama 3 tokenizer). The
# complete versions are run_hip_gpu_checks.sh and run_serve_gpu_bench.sh. Carry gpu_carry/dist.tar.xz (made with
# DIST_SKIP=bench_attention_cuda tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz, or the call exceeds 64 MiB),
# gpu_carry/commit.txt and gpu_carry/tok_llama3.tar.xz; everything comes back as $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json"
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }  # whole archives only, if the call is cut
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 100 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; tail -3 $R/gpu_tests.log
pack
{ hdr "attention-only hip vs full" "bench_sparse_attention $M 32k,128k,512k $P 5; bench_sparse_attention $M1 1m $P 5"; timeout 55 $D/bench_sparse_attention $M 32k,128k,512k $P 5; timeout 30 $D/bench_sparse_attention $M1 1m $P 5; } > $R/attention_hip.jsonl 2>&1; grep -v "^#" $R/attention_hip.jsonl | cut -c60-300
pack
timeout 90 $D/lcllm bench $M --device cuda --policy hip --prefill 32k,128k --decode 32k,128k --decode-steps 8 --json $R/e2e_hip.json -q > $R/e2e_hip.log 2>&1; tail -8 $R/e2e_hip.log
pack
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda [hip]"; timeout 45 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[hip]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1; tail -2 $R/memcheck.log
pack
tar -xJf gpu_carry/tok_llama3.tar.xz -C /tmp
timeout 70 python3 tools/bench/make_random_checkpoint.py $M /tmp/llama3 /tmp/l8b > $R/checkpoint.log 2>&1; tail -1 $R/checkpoint.log
timeout 160 python3 tools/bench/prefix_cache_ttft.py --server-cmd "$D/lcllm serve --device cuda" --model /tmp/l8b --prefix-tokens 65536 \
  --server-args "--max-model-len 67000 --ctx-size 140000" --json $R/prefix_ttft_64k.json > $R/prefix_ttft_64k.log 2>&1
echo "prefix exit $?"; cut -c1-300 $R/prefix_ttft_64k.log | tail -12
for f in $R/*.json; do echo "{\"card\": \"$card\", \"commit\": \"$commit\"}" > $f.card; done
pack
