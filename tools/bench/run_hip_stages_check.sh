#!/usr/bin/env bash
# One device call for HiP stage-wise refresh (InfiniteHiP §4; docs/KERNEL_NOTES.md 6i): the sparse / HiP CUDA tests
# (the stage kept on the device and resumed searches against the CPU rule, graphs with coarse stages), then
# attention-only decode (bench_sparse_attention) of the staged plans next to the plain ones at 8B 128k / 512k and 1B
# 1M (and, when dist/ has one, the previous build as bench_base on the plain plans: same call, same card), and
# lcllm bench decode end to end (8B 128k, 1B 1M). Carry gpu_carry/dist.tar.xz and gpu_carry/commit.txt.
#   bash tools/bench/run_hip_stages_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json
PL=tools/bench/plans
OLD="full,hip,configs/policies/hip-all-layers-refresh8.json"
NEW="$OLD,$PL/hip-r1-c8.json,$PL/hip-all-layers-r1-c8.json,$PL/hip-all-layers-r2-c16.json,$PL/hip-all-layers-r8-c32.json"
{ hdr "CUDA tests: sparse, hip" "test_cuda [sparse],[hip]"; timeout 200 $D/test_cuda "[sparse],[hip]"; echo "exit code: $?"; } > $R/tests.log 2>&1
tail -3 $R/tests.log; pack
summary() { grep -v "^#" "$1" | python3 -c "
import sys, json
for l in sys.stdin:
    try: d = json.loads(l)
    except Exception: print(l.strip()[:160]); continue
    print(d['model'].split('/')[-1][:12], d['context'], d['policy'].split('/')[-1][:26], d.get('attention_ms_per_step_b2b', ''), 'cached', d.get('cached_step_ms_b2b', ''), 'search', d.get('search_step_ms_b2b', ''), 'resumed', d.get('resumed_search_step_ms_b2b', ''), 'mean', d.get('mean_ms_per_step', ''), d.get('speedup_vs_full_b2b', d.get('speedup_vs_full_mean')), d.get('graphs', d.get('search_graphs')), d.get('resumed_graphs', ''))"; }
for b in bench_sparse_attention bench_base; do
  [ -x $D/$b ] || continue
  P=$NEW; [ $b = bench_base ] && P=$OLD
  { hdr "attention-only decode ($b)" "$b $M8 128k,512k $P 5; $b $M1 1m $P 5";
    timeout 150 $D/$b $M8 128k,512k $P 5; timeout 100 $D/$b $M1 1m $P 5; } > $R/attention_$b.jsonl 2>&1
  echo "== $b"; summary $R/attention_$b.jsonl; pack
done
P3="full,configs/policies/hip-refresh8.json,$PL/hip-r1-c8.json"
{ hdr "lcllm decode end to end, 8B: $P3" "lcllm bench $M8 --device cuda --policy $P3 --prefill 4k --decode 128k --decode-steps 32";
  timeout 150 $D/lcllm bench $M8 --device cuda --policy $P3 --prefill 4k --decode 128k --decode-steps 32 --json $R/e2e_8b.json -q; echo "exit code: $?"; } > $R/e2e_8b.log 2>&1
tail -6 $R/e2e_8b.log
{ hdr "lcllm decode end to end, 1B at 1M: $P3" "lcllm bench $M1 --device cuda --policy $P3 --prefill 4k --decode 1m --decode-steps 32";
  timeout 150 $D/lcllm bench $M1 --device cuda --policy $P3 --prefill 4k --decode 1m --decode-steps 32 --json $R/e2e_1b.json -q; echo "exit code: $?"; } > $R/e2e_1b.log 2>&1
tail -5 $R/e2e_1b.log; pack
