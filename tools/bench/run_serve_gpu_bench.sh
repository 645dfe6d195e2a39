#!/usr/bin/env bash
# E11's serving targets in one device call (H200): a Llama-3.1-8B-shaped checkpoint with random bf16 weights and the
# real Llama 3 tokenizer (made on the device: 16 GB never travels), then
#   - prefix caching: time to first token of three requests sharing a 64k-token document, caching on and off;
#   - the load test: 1 / 8 / 32 clients, a shared 16k-token document + a question each, caching on and off.
# Run from the repository root with gpu_carry/dist.tar.xz, gpu_carry/commit.txt and gpu_carry/tok_llama3.tar.xz
# (tar -C ../shared/assets/tokenizers -cJf gpu_carry/tok_llama3.tar.xz llama3, 1.6 MB) carried; returns $OUT/r.tar.xz.
# dist (~25 MB) + tokenizer + the tracked files (~39 MB) come to ~63 MiB of the 64 a call carries: if dist grows,
# carry the tokenizer in an earlier call that unpacks it to /tmp (this script skips the unpack when /tmp/llama3 exists).
# SKIP_PREFIX=1 leaves out the 64k prefix-caching stage (measured: bench/results/prefix_ttft_h100_2026-12-05/).
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
[ -d /tmp/llama3 ] || tar -xJf gpu_carry/tok_llama3.tar.xz -C /tmp
[ -f /tmp/l8b/config.json ] || python3 tools/bench/make_random_checkpoint.py configs/models/llama-3.1-8b.json /tmp/llama3 /tmp/l8b > $R/checkpoint.log 2>&1
tail -1 $R/checkpoint.log
S="$D/lcllm serve --device cuda"
[ -n "${SKIP_PREFIX:-}" ] || timeout 240 python3 tools/bench/prefix_cache_ttft.py --server-cmd "$S" --model /tmp/l8b --prefix-tokens 65536 \
  --server-args "--max-model-len 67000 --ctx-size 140000" --json $R/prefix_ttft_64k.json > $R/prefix_ttft_64k.log 2>&1
echo "prefix exit $?"; cut -c1-400 $R/prefix_ttft_64k.log
timeout 330 python3 tools/bench/load_test.py --server-cmd "$S" --model /tmp/l8b --shared-prefix-tokens 16384 \
  --prefix-caching both --concurrency 1,8,32 --requests 8 --max-tokens 64 \
  --server-args "--max-num-seqs 32 --max-model-len 17500 --ctx-size 300000" --json $R/load_16k_prefix.json > $R/load_16k_prefix.log 2>&1
echo "load exit $?"; grep -E "concurrency|RSS" $R/load_16k_prefix.log
for f in $R/*.json; do echo "{\"card\": \"$card\", \"commit\": \"$commit\"}" > $f.card; done
tar -C /tmp -cJf $OUT/r.tar.xz r
