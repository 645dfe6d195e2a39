#!/usr/bin/env bash
# The E8 evidence in one device call (H200): CUDA tests, compute-sanitizer memcheck on the sparse tests, attention-only
# decode step per policy + the PyTorch SDPA peer, end-to-end decode per policy (Llama-3.1-8B shape, random weights),
# NIAH per policy on models/needle. Run from the repository root with gpu_carry/dist.tar.xz
# (tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz) and gpu_carry/commit.txt (git rev-parse --short HEAD) carried;
# $OUT is the folder that comes back.
source tools/bench/gpu_dist_env.sh
{ hdr "lcllm CUDA tests (E8 sparse attention included)" "test_cuda --durations yes"; timeout 200 $D/test_cuda --durations yes; echo "exit code: $?"; } > $OUT/gpu_tests.log 2>&1
grep -E "FAILED|test cases|exit code" $OUT/gpu_tests.log | head -10
f='[sparse]~[select_1m]~[needle]~[exactness]'
{ hdr "compute-sanitizer memcheck on the sparse attention tests" "compute-sanitizer --tool memcheck --error-exitcode 99 test_cuda '$f'"; timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "$f"; echo "exit code: $?"; } > $OUT/memcheck_sparse.log 2>&1
tail -2 $OUT/memcheck_sparse.log
cmd="bench_sparse_attention configs/models/llama-3.1-8b.json 32k,128k,512k full,tidal,hylra,streaming,configs/policies/retrieval-half-llama-3.1-8b.json 10"
{ timeout 150 $D/$cmd; echo "{\"exit\": $?, \"commit\": \"$commit\", \"date\": \"$(date -u +%FT%TZ)\", \"command\": \"$cmd\"}"; } > $OUT/bench_sparse.jsonl 2>&1
python3 -c "
import json
for l in open('$OUT/bench_sparse.jsonl'):
    d=json.loads(l)
    if 'policy' not in d: print(d); continue
    print(d['context'], d['policy'][-28:], 'graph %.3f ms  b2b %.3f  eager %.3f  KV %.2f GB  x%.2f' % (d['attention_ms_per_step'], d['attention_ms_per_step_b2b'], d['eager_ms_per_step'], d['kv_bytes_read']/1e9, d['speedup_vs_full_b2b']))
"
timeout 60 python3 tools/bench/attention_sdpa.py --prefill --decode 32768 131072 524288 > $OUT/sdpa_decode.jsonl 2>&1; echo "sdpa exit $?"
timeout 240 $D/lcllm bench configs/models/llama-3.1-8b.json --device cuda --prefill 1k --decode 32k,128k,512k --decode-steps 16 --policy full,tidal,hylra,streaming,configs/policies/retrieval-half-llama-3.1-8b.json --json $OUT/e2e_policies.json -q > $OUT/e2e_policies.log 2>&1; echo "e2e exit $?"; tail -18 $OUT/e2e_policies.log
mkdir -p /tmp/niah
timeout 200 $D/lcllm eval niah models/needle --device cuda --policy full,tidal,hylra,streaming,configs/policies/retrieval-half-needle.json --lengths 1k,4k,8k,16k --depths 0:100:25 --samples 1 --chunk-size 2048 --max-new-tokens 8 --out /tmp/niah > /tmp/niah/niah_gpu.log 2>&1; echo "niah exit $?"; tail -9 /tmp/niah/niah_gpu.log
tar -C /tmp -czf $OUT/niah_gpu.tar.gz niah
