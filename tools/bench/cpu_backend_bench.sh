#!/usr/bin/env bash
# The CPU backend on the two real GGUF models (E10), one `lcllm bench` JSON per model: prefill tokens/s and time to
# first token at the context lengths the CPU evals use, decode ms/token, peak RSS. Compare binaries by running
# this script with LCLLM pointing at each (docs/PERFORMANCE.md, "CPU backend").
#
# Usage: tools/bench/cpu_backend_bench.sh OUT_DIR [MODEL_DIR]   (MODEL_DIR: where tools/fetch_models.sh put them)
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [MODEL_DIR]}
models=${2:-${LCLLM_MODEL_CACHE:-$HOME/.cache/lcllm/models}}
lcllm=${LCLLM:-build/lcllm}
mkdir -p "$out"
"$lcllm" bench "$models/SmolLM2-135M-Instruct.Q4_1.gguf" --device cpu --prefill 1k,4k --decode 1k,4k \
  --decode-steps 8 -q --json "$out/smollm2_135m.json"
"$lcllm" bench "$models/gemma-3-270m-q4_k_m.gguf" --device cpu --prefill 4k,16k --decode 4k,16k \
  --decode-steps 8 -q --json "$out/gemma3_270m.json"
