#!/usr/bin/env bash
# The tensor-core decode kernel (kernels/attention_decode_tc.cu, bf16 and fp8 caches) in one device call (H200): the
# CUDA tests, memcheck on the attention / key-set / fp8 tests, attention-only decode GB/s, the sparse policies'
# attention-only step, end-to-end decode with bf16 and fp8 KV and per policy, and the needle. Run from the repository
# root with gpu_carry/dist.tar.xz and gpu_carry/commit.txt carried; everything comes back as $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json
{ hdr "lcllm CUDA tests" "test_cuda --durations yes"; timeout 150 $D/test_cuda --durations yes; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; tail -2 $R/gpu_tests.log
{ hdr "memcheck" "compute-sanitizer --tool memcheck test_cuda [keysets]"; timeout 80 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[keysets]"; echo "exit code: $?"; } > $R/memcheck.log 2>&1; tail -2 $R/memcheck.log
{ hdr "attention kernels" "bench_attention_cuda -- 32768 131072 524288"; timeout 60 $D/bench_attention_cuda -- 32768 131072 524288; } > $R/attention_decode.jsonl 2>&1; grep -i decode $R/attention_decode.jsonl | cut -c1-220
{ hdr "attention-only policies" "bench_sparse_attention $M 128k full,tidal,streaming,configs/policies/retrieval-half-llama-3.1-8b.json 10"; timeout 60 $D/bench_sparse_attention $M 128k full,tidal,streaming,configs/policies/retrieval-half-llama-3.1-8b.json 10; } > $R/attention_policies.jsonl 2>&1; tail -6 $R/attention_policies.jsonl | cut -c1-200
for dt in bf16 fp8; do
  timeout 100 $D/lcllm bench $M --device cuda --prefill 8k --decode 32k,128k,512k --decode-steps 16 --kv-cache-dtype $dt --json $R/e2e_kv_$dt.json -q > $R/e2e_kv_$dt.log 2>&1; grep -E "^full|^ +8192" $R/e2e_kv_$dt.log
done
timeout 60 $D/lcllm eval niah models/needle --device cuda --policy full,tidal,hylra,streaming --lengths 1k,4k,8k,16k --out /tmp/n -q > $R/niah.log 2>&1; mkdir -p $R/niah_needle; cp /tmp/n/comparison.md /tmp/n/summary.csv $R/niah_needle/; head -9 $R/niah_needle/comparison.md
tar -C /tmp -cJf $OUT/r.tar.xz r
