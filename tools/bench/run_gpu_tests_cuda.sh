#!/usr/bin/env bash
# One device call: the CUDA tests, compute-sanitizer memcheck on the kernel tests, then the attention timings
# against PyTorch SDPA. Logs (with card, date and command at the top) go to OUT_DIR.
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
missing=$(ldd "$DIST/test_cuda" | grep "not found")
[ -n "$missing" ] && echo "missing libraries: $missing"

cmd="test_cuda --durations yes"
{ header "lcllm CUDA backend tests" "$cmd"; timeout 220 "$DIST/test_cuda" --durations yes; echo "exit code: $?"; } \
  > "$OUT_DIR/gpu_tests.log" 2>&1
grep -E -A2 "warning:|FAILED|failed|exit code|test cases" "$OUT_DIR/gpu_tests.log" | grep -v -E "^--$|^$|^/" | tail -60

filter='[ops],[attention]~[long]'
cmd="compute-sanitizer --tool memcheck --error-exitcode 99 test_cuda '$filter'"
{ header "compute-sanitizer memcheck on the kernel tests" "$cmd"
  timeout 170 compute-sanitizer --tool memcheck --error-exitcode 99 "$DIST/test_cuda" "$filter"; echo "exit code: $?"; } \
  > "$OUT_DIR/sanitizer.log" 2>&1
tail -4 "$OUT_DIR/sanitizer.log"

filter='cuda attention matches CPU: sliding windows and softcaps'
cmd="compute-sanitizer --tool racecheck --error-exitcode 99 test_cuda '$filter'"
{ header "compute-sanitizer racecheck on the attention kernels (small shapes)" "$cmd"
  timeout 120 compute-sanitizer --tool racecheck --error-exitcode 99 "$DIST/test_cuda" "$filter"; echo "exit code: $?"; } \
  > "$OUT_DIR/racecheck.log" 2>&1
tail -4 "$OUT_DIR/racecheck.log"

{ header "attention timings: lcllm v1 kernels vs PyTorch SDPA (GQA 32/8, d=128, bf16)" \
    "bench_attention_cuda 4096 8192 -- 32768 131072; python3 tools/bench/attention_sdpa.py"
  timeout 50 "$DIST/bench_attention_cuda" 4096 8192 -- 32768 131072
  timeout 60 python3 tools/bench/attention_sdpa.py --prefill 4096 8192 --decode 32768 131072; } \
  > "$OUT_DIR/attention_bench.log" 2>&1
cat "$OUT_DIR/attention_bench.log"
