#!/usr/bin/env bash
# One device call: the CUDA tests (attention subset first, then everything, then everything again with v2 prefill's
# hi + lo split q), compute-sanitizer memcheck + racecheck on small attention shapes, then the attention timings of
# v2, v1 and PyTorch SDPA (flash, cuDNN) in the same call. Logs (with card, date and command at the top) and
# attention_v2.json go to OUT_DIR.
#   tools/bench/run_gpu_tests_cuda.sh DIST_DIR OUT_DIR
# DIST_DIR holds test_cuda, bench_attention_cuda and the shared libraries the target machine lacks.
set -uo pipefail
DIST=$(realpath "$1")
OUT_DIR=$2
mkdir -p "$OUT_DIR"
export LD_LIBRARY_PATH="$DIST:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
header() {  # title, command
  echo "# $1"
  echo "# card: $card"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# command: $2"
}
summary() { grep -E -A2 "warning:|FAILED|failed|exit code|test cases" "$1" | grep -v -E "^--$|^$|^/" | tail -${2:-40}; }
missing=$(ldd "$DIST/test_cuda" | grep "not found")
[ -n "$missing" ] && echo "missing libraries: $missing"

cmd="test_cuda '[attention]~[long]' --durations yes"
{ header "attention tests, short shapes" "$cmd"; timeout 60 "$DIST/test_cuda" '[attention]~[long]' --durations yes; echo "exit code: $?"; } \
  > "$OUT_DIR/attn_fast.log" 2>&1
echo "== fast subset"; summary "$OUT_DIR/attn_fast.log" 40

cmd="test_cuda --durations yes"
{ header "lcllm CUDA backend tests" "$cmd"; timeout 200 "$DIST/test_cuda" --durations yes; echo "exit code: $?"; } \
  > "$OUT_DIR/gpu_tests.log" 2>&1
echo "== full"; summary "$OUT_DIR/gpu_tests.log" 60

filter='[attention]~[long]'
cmd="compute-sanitizer --tool memcheck --error-exitcode 99 test_cuda '$filter'"
{ header "compute-sanitizer memcheck on the attention tests (short shapes)" "$cmd"
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 99 "$DIST/test_cuda" "$filter"; echo "exit code: $?"; } \
  > "$OUT_DIR/sanitizer.log" 2>&1
echo "== memcheck"; tail -4 "$OUT_DIR/sanitizer.log"

filter='cuda attention matches CPU: sliding windows and softcaps'
cmd="compute-sanitizer --tool racecheck --error-exitcode 99 test_cuda '$filter'"
{ header "compute-sanitizer racecheck on the attention kernels (small shapes)" "$cmd"
  timeout 100 compute-sanitizer --tool racecheck --error-exitcode 99 "$DIST/test_cuda" "$filter"; echo "exit code: $?"; } \
  > "$OUT_DIR/racecheck.log" 2>&1
echo "== racecheck"; tail -4 "$OUT_DIR/racecheck.log"

P=${PREFILL:-8192 32768}
DEC=${DECODE:-32768 131072 524288}
bcmd="bench_attention_cuda $P -- $DEC; python3 tools/bench/attention_sdpa.py --prefill $P --decode $DEC"
{ header "attention timings: lcllm kernels vs PyTorch SDPA (GQA 32/8, d=128, bf16)" "$bcmd"
  timeout 90 "$DIST/bench_attention_cuda" $P -- $DEC
  timeout 120 python3 tools/bench/attention_sdpa.py --prefill $P --decode $DEC; } \
  > "$OUT_DIR/attention_bench.log" 2>&1
echo "== bench"; cat "$OUT_DIR/attention_bench.log"
python3 - "$OUT_DIR/attention_bench.log" "$OUT_DIR/attention_v2.json" "$card" "$bcmd" <<'PY'
import json, sys, datetime
log, out, card, cmd = sys.argv[1:5]
rows = []
for line in open(log):
    line = line.strip()
    if line.startswith("{"):
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
json.dump({"title": "attention kernels v2 vs v1 vs PyTorch SDPA (flash, cuDNN), same call, same card",
           "shapes": "one sequence, 32 query heads, 8 KV heads, head_dim 128, bf16 K/V (lcllm: paged, page 16, "
                     "shuffled pages, fp32 q/out); prefill causal; decode GB/s = K+V bytes / time",
           "card": card, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "command": cmd,
           "results": rows}, open(out, "w"), indent=1)
PY

if [ "${PROFILE:-0}" = 1 ] && command -v ncu > /dev/null; then
  sections="--section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis"
  { header "ncu: v2 prefill 8k, v2 decode 128k (+ merge)" "ncu $sections ..."
    timeout 120 ncu --kernel-name regex:prefill_v2 --launch-skip 2 --launch-count 1 $sections "$DIST/bench_attention_cuda" 8192 --
    timeout 120 ncu --kernel-name regex:decode --launch-skip 4 --launch-count 2 $sections "$DIST/bench_attention_cuda" -- 131072
  } > "$OUT_DIR/ncu.log" 2>&1
  echo "== ncu"; grep -E "Duration|Throughput|Registers|Achieved Occupancy|Theoretical Occupancy|Issue Slots Busy|Warp Cycles Per Issued|No Eligible|kernel_attention|Block Limit" "$OUT_DIR/ncu.log" | head -70
fi
