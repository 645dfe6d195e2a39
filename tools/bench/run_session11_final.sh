#!/usr/bin/env bash
# Session 11's last device call: the HiP search's tensor-core scores (the CUDA suite, attention-only decode of full /
# hip / hip-refresh8 / hip-all-layers) and E11's server load test (1 / 8 / 32 clients sharing a 16k-token document,
# prefix caching on and off) on random Llama-3.1-8B-shaped weights with the real Llama 3 tokenizer, made on the
# device's CPUs while the GPU runs the tests. Carry gpu_carry/dist.tar.xz (DIST_SKIP=bench_attention_cuda
# tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz), gpu_carry/commit.txt and gpu_carry/tok_llama3.tar.xz;
# everything comes back as $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json; M1=configs/models/llama-3.2-1b.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json"
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
[ -d /tmp/llama3 ] || tar -xJf gpu_carry/tok_llama3.tar.xz -C /tmp
( [ -f /tmp/l8b/config.json ] || timeout 150 python3 tools/bench/make_random_checkpoint.py $M /tmp/llama3 /tmp/l8b > $R/checkpoint.log 2>&1 ) &
ckpt=$!
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 100 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; grep -E "FAILED|failed|passed" $R/gpu_tests.log | tail -4
pack
{ hdr "attention-only decode" "bench_sparse_attention $M 32k,128k,512k $P 5; bench_sparse_attention $M1 1m $P 5"; timeout 60 $D/bench_sparse_attention $M 32k,128k,512k $P 5; timeout 30 $D/bench_sparse_attention $M1 1m $P 5; } > $R/attention_hip.jsonl 2>&1
grep -v "^#" $R/attention_hip.jsonl | grep -o '"context": [0-9]*, "policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' | sed 's/"layers.*attention_ms/ ms/; s/configs.policies.//'
pack
wait $ckpt; tail -1 $R/checkpoint.log
timeout 240 python3 tools/bench/load_test.py --server-cmd "$D/lcllm serve --device cuda" --model /tmp/l8b --shared-prefix-tokens 16384 \
  --prefix-caching both --concurrency 1,8,32 --requests 8 --max-tokens 64 \
  --server-args "--max-num-seqs 32 --max-model-len 17500 --ctx-size 300000" --json $R/load_16k_prefix.json > $R/load_16k_prefix.log 2>&1
echo "load exit $?"; grep -E "concurrency|RSS" $R/load_16k_prefix.log | cut -c1-220
for f in $R/*.json; do echo "{\"card\": \"$card\", \"commit\": \"$commit\"}" > $f.card; done
pack
