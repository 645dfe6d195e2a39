#!/usr/bin/env bash
# One device call for the HiP decode table on the card it lands on (session 21: meant for an H200): the sparse / HiP
# CUDA tests, attention-only decode (bench_sparse_attention) of the plain, refreshed and stage-wise-refreshed HiP
# plans at 8B 32k / 128k / 512k and 1B 1M, lcllm bench end to end (8B TTFT and decode at 32k / 128k with the hip
# preset, which attends densely below 32k prompt / 128k decode keys; 1B decode at 1M), memcheck of the stage test,
# then (ALL_TESTS=1) the whole CUDA suite.
# Carry gpu_carry/dist.tar.xz and gpu_carry/commit.txt.
#   [QUICK=1] [ALL_TESTS=1] bash tools/bench/run_hip_table_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json
PL=tools/bench/plans CP=configs/policies
P="full,hip,$CP/hip-refresh8.json,$PL/hip-r1-c8.json,$CP/hip-all-layers-refresh8.json,$PL/hip-all-layers-r1-c8.json,$PL/hip-all-layers-r8-c32.json"
{ hdr "CUDA tests: sparse, hip" "test_cuda [sparse],[hip]"; timeout 200 $D/test_cuda "[sparse],[hip]"; echo "exit code: $?"; } > $R/tests.log 2>&1
tail -3 $R/tests.log; pack
{ hdr "memcheck: the stage-wise refresh test" "compute-sanitizer --tool memcheck test_cuda 'cuda HiP stage-wise*'";
  timeout 90 compute-sanitizer --tool memcheck $D/test_cuda "cuda HiP stage-wise*"; echo "exit code: $?"; } > $R/memcheck_stages.log 2>&1
tail -3 $R/memcheck_stages.log; pack
C8=32k,128k,512k
# QUICK=1 (a short call): fewer plans and lengths (64k: where the stage-wise plan crosses dense).
[ -n "$QUICK" ] && P="full,hip,$PL/hip-r1-c8.json,$PL/hip-all-layers-r8-c32.json" C8=32k,64k,128k
{ hdr "attention-only decode" "bench_sparse_attention $M8 $C8 $P 5; bench_sparse_attention $M1 1m $P 5";
  timeout 170 $D/bench_sparse_attention $M8 $C8 $P 5; timeout 100 $D/bench_sparse_attention $M1 1m $P 5; } > $R/attention.jsonl 2>&1
grep -v "^#" $R/attention.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    try: d = json.loads(l)
    except Exception: print(l.strip()[:160]); continue
    print(d['card'][:12], d['model'].split('/')[-1][:12], d['context'], d['policy'].split('/')[-1][:26], d.get('attention_ms_per_step_b2b', ''), 'search', d.get('search_step_ms_b2b', ''), 'resumed', d.get('resumed_search_step_ms_b2b', ''), 'cached', d.get('cached_step_ms_b2b', ''), 'mean', d.get('mean_ms_per_step', ''), d.get('speedup_vs_full_b2b', d.get('speedup_vs_full_mean')))"
pack
P8="full,hip,$CP/hip-stages.json" PF=32k,128k
[ -n "$QUICK" ] && PF=32k
{ hdr "lcllm end to end, 8B: $P8" "lcllm bench $M8 --device cuda --policy $P8 --prefill $PF --decode 32k,128k --decode-steps 16";
  timeout 240 $D/lcllm bench $M8 --device cuda --policy $P8 --prefill $PF --decode 32k,128k --decode-steps 16 --json $R/e2e_8b.json -q; echo "exit code: $?"; } > $R/e2e_8b.log 2>&1
tail -16 $R/e2e_8b.log; pack
P1="full,hip,$CP/hip-refresh8.json,$CP/hip-stages.json"
[ -z "$QUICK" ] && { hdr "lcllm decode end to end, 1B at 1M: $P1" "lcllm bench $M1 --device cuda --policy $P1 --prefill 4k --decode 1m --decode-steps 32";
  timeout 150 $D/lcllm bench $M1 --device cuda --policy $P1 --prefill 4k --decode 1m --decode-steps 32 --json $R/e2e_1b.json -q; echo "exit code: $?"; } > $R/e2e_1b.log 2>&1
[ -z "$QUICK" ] && tail -6 $R/e2e_1b.log; pack
if [ -n "$ALL_TESTS" ]; then
  { hdr "CUDA tests: the whole suite" "test_cuda"; timeout 200 $D/test_cuda; echo "exit code: $?"; } > $R/tests_all.log 2>&1
  tail -3 $R/tests_all.log; pack
fi
