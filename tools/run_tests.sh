#!/usr/bin/env bash
# Builds lcllm and runs every test: the Catch2 suites through CTest (GPU-labelled tests are skipped when no
# GPU is present), the CLI smoke tests, then each libFuzzer target for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
ctest_args=(--test-dir build --output-on-failure)
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  ctest_args+=(-LE gpu)
  echo "run_tests.sh: no GPU found, skipping tests labelled gpu"
fi
ctest "${ctest_args[@]}"
bash tools/run_fuzz.sh "${FUZZ_SECONDS:-60}"
