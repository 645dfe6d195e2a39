#!/usr/bin/env bash
# One device call: end-to-end prefill and decode of lcllm (`lcllm bench`, random bf16 weights in real shapes from
# configs/models/) and of Hugging Face transformers on the same shapes (tools/bench/e2e_transformers.py), same card,
# same run; then tools/bench/summarize_e2e.py writes OUT/e2e.json and OUT/e2e.md (the PERFORMANCE.md table).
#   tools/bench/run_e2e_bench.sh DIST_DIR OUT_DIR [MODEL ...]     (DIST_DIR: lcllm and the .so files it needs)
set -uo pipefail
DIST=$(realpath "$1")
OUT_DIR=$2
shift 2
mkdir -p "$OUT_DIR"
export LD_LIBRARY_PATH="$DIST:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# model : prefill lengths : decode lengths. Gemma-2-9B prefills 4k only: its head_dim 256 runs the scalar prefill
# kernel (tensor cores cover 64/128 so far), and transformers needs eager attention for its logit softcap.
specs=("${@:-llama-3.2-1b:4k,32k,128k:4k,32k,128k llama-3.1-8b:4k,32k,128k:4k,32k,128k qwen2.5-7b:4k,32k,128k:4k,32k,128k gemma-2-9b:4k:4k,32k,128k}")
{
  echo "card: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$OUT_DIR/e2e_env.txt"
for spec in ${specs[@]}; do
  IFS=: read -r name prefill decode <<<"$spec"
  echo "=== $name: prefill $prefill, decode $decode"
  "$DIST/lcllm" bench "configs/models/$name.json" --device cuda --prefill "$prefill" --decode "$decode" \
    --decode-steps 32 --chunk-size 8192 --json "$OUT_DIR/lcllm_$name.json" --plot "$OUT_DIR/lcllm_$name" -q \
    2>&1 | tee "$OUT_DIR/lcllm_$name.log"
  python3 tools/bench/e2e_transformers.py "configs/models/$name.json" --prefill "$prefill" --decode "$decode" \
    --decode-steps 32 --json "$OUT_DIR/hf_$name.json" 2>&1 | grep -v Warning | tee "$OUT_DIR/hf_$name.log"
done
python3 tools/bench/summarize_e2e.py "$OUT_DIR"
