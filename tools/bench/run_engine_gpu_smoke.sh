#!/usr/bin/env bash
# One device call: the engine end to end on the GPU through the CLI. For every parity fixture, greedy ids
# from --device cuda vs transformers' greedy continuation (reference.json); the default model with --chat;
# then the CUDA test binary. Writes a log with card, date and command to OUT_DIR/engine_gpu.log.
#   tools/bench/run_engine_gpu_smoke.sh DIST_DIR OUT_DIR     (DIST_DIR: lcllm, test_cuda, missing .so files)
set -uo pipefail
DIST=$(realpath "$1")
OUT_DIR=$2
mkdir -p "$OUT_DIR"
export LD_LIBRARY_PATH="$DIST:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
log="$OUT_DIR/engine_gpu.log"
{
  echo "# lcllm engine on the GPU: CLI greedy decoding vs transformers, chat on the default model, test_cuda"
  echo "# card: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# command: tools/bench/run_engine_gpu_smoke.sh DIST OUT"
  ldd "$DIST/lcllm" | grep "not found" && echo "missing libraries"
  for dir in tests/fixtures/parity/*/; do
    name=$(basename "$dir")
    prompt=$(python3 -c "import json;print(','.join(map(str,json.load(open('$dir/reference.json'))['prompt_ids'])))")
    want=$(python3 -c "import json;print(','.join(map(str,json.load(open('$dir/reference.json'))['greedy_ids'])))")
    got=$("$DIST/lcllm" run "$dir" --device cuda --prompt-ids "$prompt" --max-tokens 16 --temperature 0 --ignore-eos -q 2>"$OUT_DIR/err_$name.txt")
    rc=$?
    same=0; total=0
    IFS=, read -ra a <<<"$want"; IFS=, read -ra b <<<"$got"
    for i in "${!a[@]}"; do total=$((total+1)); [ "${a[$i]}" == "${b[$i]:-}" ] && same=$((same+1)) || break; done
    echo "$name: rc=$rc, first $same of $total greedy tokens identical to transformers; $(tail -2 "$OUT_DIR/err_$name.txt" | head -1)"
  done
  echo "--- default model, chat, cuda"
  "$DIST/lcllm" run models/default --device cuda --chat --prompt "Hello, who are you?" --max-tokens 24 --seed 1 -q 2>&1
  echo "--- same on cpu"
  "$DIST/lcllm" run models/default --device cpu --chat --prompt "Hello, who are you?" --max-tokens 24 --seed 1 -q 2>&1
  echo "--- ctx-size 0 takes the GPU memory budget"
  "$DIST/lcllm" run models/default --device cuda --ctx-size 0 --gpu-memory-fraction 0.5 --prompt "Hi" --max-tokens 4 -q 2>&1 | tail -1
  echo "--- test_cuda"
  timeout 240 "$DIST/test_cuda" 2>&1 | tail -4
} >"$log" 2>&1
cat "$log"
