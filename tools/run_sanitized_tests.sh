#!/usr/bin/env bash
# The Catch2 suites of the CPU build under AddressSanitizer and UndefinedBehaviorSanitizer (GCC's runtimes): a
# second, CPU-only build in ./build-asan (-O1), each suite run with leak detection, any sanitizer report
# a failure. The CUDA backend is left out (its memory checks are compute-sanitizer's, on the GPU machine) and so is
# the CLI script (its `ulimit -v` check cannot run under ASan, which reserves terabytes of shadow memory).
# Prints "sanitized: N passed, M failed" and exits non-zero on any failure.   usage: tools/run_sanitized_tests.sh
set -uo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# -O1 with line tables only: the build is most of the time (the suites run in a couple of minutes).
flags="-O1 -g1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
if [ ! -f build-asan/CMakeCache.txt ]; then
  cmake -S . -B build-asan "${generator[@]}" -DCMAKE_BUILD_TYPE=None -DLCLLM_CUDA=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null ||
    { echo "sanitized: 0 passed, 1 failed (configure)"; exit 1; }
fi
# The Catch2 suites only (not the CLI, the benchmarks or the tools).
mapfile -t suites < <(cmake --build build-asan --target help | grep -oE '^test_[a-z0-9_]+' | sort -u)
[ "${#suites[@]}" -gt 0 ] || { echo "sanitized: 0 passed, 1 failed (no test targets)"; exit 1; }
cmake --build build-asan -j "$(nproc)" --target "${suites[@]}" >build-asan.log 2>&1 ||
  { tail -20 build-asan.log; echo "sanitized: 0 passed, 1 failed (build: build-asan.log)"; exit 1; }
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
export LCLLM_MODEL_CACHE="${LCLLM_MODEL_CACHE:-$PWD/build/models}"
passed=0 failed=0
for t in build-asan/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  log=build-asan/$name.log
  "$t" >"$log" 2>&1
  rc=$?
  reports=$(grep -c 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log")
  if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok   $name (sanitized)"
  else
    failed=$((failed + 1))
    echo "FAIL $name (sanitized): exit code $rc, $reports sanitizer reports"
    grep -A 12 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$log" | head -40
    tail -5 "$log"
  fi
done
echo "sanitized: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
