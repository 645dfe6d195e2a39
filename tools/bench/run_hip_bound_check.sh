#!/usr/bin/env bash
# One device call for the HiP key-set bound (docs/KERNEL_NOTES.md 6h): the step plan bounded a HIP item's keys by
# the whole context, so the decode kernels planned ~1k-key splits and a cached step's ~3k keys per KV head fell into
# 3 of 33 splits. Runs the sparse / HiP CUDA tests, then attention-only decode (bench_sparse_attention) for this build
# and, when dist/ has one, the previous build as bench_base (same call, same card), ncu tail metrics of the key-set
# decode kernel in a cached step, and lcllm bench decode end to end (8B 32k / 128k, 1B 1M; full, hip, hip-refresh8).
# Carry gpu_carry/dist.tar.xz (make_gpu_dist.sh with build/bench_base) and gpu_carry/commit.txt.
#   bash tools/bench/run_hip_bound_check.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
M8=configs/models/llama-3.1-8b.json M1=configs/models/llama-3.2-1b.json
P="full,hip,configs/policies/hip-refresh8.json,configs/policies/hip-all-layers.json,configs/policies/hip-all-layers-refresh8.json,tools/bench/plans/streaming-3k.json"
{ hdr "CUDA tests: sparse, hip" "test_cuda [sparse],[hip]"; timeout 150 $D/test_cuda "[sparse],[hip]"; echo "exit code: $?"; } > $R/tests.log 2>&1
tail -3 $R/tests.log; pack
for b in bench_sparse_attention bench_base; do
  [ -x $D/$b ] || continue
  { hdr "attention-only decode ($b)" "$b $M8 32k,128k,512k $P 5; $b $M1 1m $P 5";
    timeout 100 $D/$b $M8 32k,128k,512k $P 5; timeout 60 $D/$b $M1 1m $P 5; } > $R/attention_$b.jsonl 2>&1
  echo "== $b"; grep -v "^#" $R/attention_$b.jsonl | python3 -c "
import sys, json
for l in sys.stdin:
    try: d = json.loads(l)
    except Exception: print(l.strip()[:160]); continue
    print(d['model'].split('/')[-1][:12], d['context'], d['policy'].split('/')[-1][:26], d.get('attention_ms_per_step_b2b', ''), 'cached', d.get('cached_step_ms_b2b', ''), 'search', d.get('search_step_ms_b2b', ''), 'mean', d.get('mean_ms_per_step', ''), d.get('speedup_vs_full_b2b', d.get('speedup_vs_full_mean')), d.get('graphs', d.get('search_graphs')))"
  pack
done
MET=sm__cycles_active.avg,sm__cycles_active.min,sm__cycles_active.max,gpu__time_duration.sum,sm__cycles_elapsed.max,smsp__inst_executed.max
{ hdr "ncu tail metrics: decode_tc in a cached hip-all-layers-refresh8 step, 8B 32k" "ncu --metrics $MET -k regex:decode_tc|hip_lists|decode_merge -s 150 -c 3 bench_sparse_attention $M8 32k hip-all-layers-refresh8 2";
  timeout 90 ncu --metrics $MET -k "regex:decode_tc|hip_lists|decode_merge" -s 150 -c 3 $D/bench_sparse_attention $M8 32k configs/policies/hip-all-layers-refresh8.json 2; echo "exit code: $?"; } > $R/ncu_tail_cached_32k.txt 2>&1
grep -E "^  [a-z].*\(|sm__|smsp__|gpu__time" $R/ncu_tail_cached_32k.txt | cut -c1-110 | head -24; pack
P3="full,hip,configs/policies/hip-refresh8.json"
{ hdr "lcllm decode end to end, 8B: $P3" "lcllm bench $M8 --device cuda --policy $P3 --prefill 4k --decode 32k,128k --decode-steps 32";
  timeout 200 $D/lcllm bench $M8 --device cuda --policy $P3 --prefill 4k --decode 32k,128k --decode-steps 32 --json $R/e2e_8b.json -q; echo "exit code: $?"; } > $R/e2e_8b.log 2>&1
tail -8 $R/e2e_8b.log
{ hdr "lcllm decode end to end, 1B at 1M: $P3" "lcllm bench $M1 --device cuda --policy $P3 --prefill 4k --decode 1m --decode-steps 32";
  timeout 200 $D/lcllm bench $M1 --device cuda --policy $P3 --prefill 4k --decode 1m --decode-steps 32 --json $R/e2e_1b.json -q; echo "exit code: $?"; } > $R/e2e_1b.log 2>&1
tail -5 $R/e2e_1b.log; pack
