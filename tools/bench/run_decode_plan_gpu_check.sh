#!/usr/bin/env bash
# Quick check of a decode-planning change (H200): the attention, key-set, sparse and fp8 CUDA tests, memcheck on the
# key sets, and the attention-only policy step at 128k. gpu_carry/dist.tar.xz + commit.txt carried; $OUT/r.tar.xz.
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json
{ hdr "lcllm CUDA tests" "test_cuda [attention],[sparse],[fp8]"; timeout 120 $D/test_cuda "[attention],[sparse],[fp8]"; echo "exit code: $?"; } > $R/gpu_tests.log 2>&1; tail -3 $R/gpu_tests.log
{ hdr "attention-only policies" "bench_sparse_attention $M 128k full,tidal,streaming,configs/policies/retrieval-half-llama-3.1-8b.json 10"; timeout 60 $D/bench_sparse_attention $M 128k full,tidal,streaming,configs/policies/retrieval-half-llama-3.1-8b.json 10; } > $R/attention_policies.jsonl 2>&1; grep -o '"policy": "[^"]*".*"attention_ms_per_step": [0-9.]*' $R/attention_policies.jsonl | sed 's/"layers.*attention_ms/ ms/'
tar -C /tmp -cJf $OUT/r.tar.xz r
