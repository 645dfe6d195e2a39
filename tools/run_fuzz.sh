#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_<name>.cpp) with clang + ASan + UBSan in build-fuzz/ and runs
# each for SECONDS over a temporary copy of tests/fuzz/corpus/<name>/, with tests/fuzz/<name>.dict if present.
# Exits non-zero if any target crashes, leaks, times out or hits UB; the reproducer is kept under
# build-fuzz/fuzz-artifacts/<name>/ and the log under build-fuzz/fuzz-logs/<name>.log.
#
#   tools/run_fuzz.sh [SECONDS] [NAME...]      default: 60 seconds, every target
#
# A new target needs no change here: drop fuzz_<name>.cpp and corpus/<name>/ into tests/fuzz/ (and, if it
# fuzzes a module other than src/io, its sanitized library into tests/fuzz/CMakeLists.txt).
# Environment: LCLLM_FUZZ_BUILD_DIR (default build-fuzz), LCLLM_FUZZ_CC / LCLLM_FUZZ_CXX (default clang /
# clang++), LCLLM_FUZZ_JOBS (build parallelism, default 2).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
  echo "usage: $0 [SECONDS] [NAME...]   (SECONDS a positive integer, got '$seconds')" >&2
  exit 2
fi
shift || true

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LCLLM_FUZZ_BUILD_DIR:-$root/build-fuzz}"
fuzz_dir="$root/tests/fuzz"

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for src in "$fuzz_dir"/fuzz_*.cpp; do
    [[ -e "$src" ]] || continue
    n="$(basename "$src" .cpp)"
    names+=("${n#fuzz_}")
  done
fi
if [[ ${#names[@]} -eq 0 ]]; then
  echo "run_fuzz: no tests/fuzz/fuzz_*.cpp targets found" >&2
  exit 2
fi

# RelWithDebInfo: optimised enough to fuzz fast, with line numbers in sanitizer reports.
cmake -S "$root" -B "$build" -G Ninja \
  -DCMAKE_C_COMPILER="${LCLLM_FUZZ_CC:-clang}" -DCMAKE_CXX_COMPILER="${LCLLM_FUZZ_CXX:-clang++}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLCLLM_FUZZ=ON -DLCLLM_BUILD_TESTS=OFF -DLCLLM_CUDA=OFF >/dev/null
cmake --build "$build" --target fuzz_all --parallel "${LCLLM_FUZZ_JOBS:-2}"

work="$(mktemp -d "${TMPDIR:-/tmp}/lcllm-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-logs"

# Fail on the first report: UBSan would otherwise only print and go on.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1}"

failed=()
summary=()
for name in "${names[@]}"; do
  bin="$build/tests/fuzz/fuzz_$name"
  if [[ ! -x "$bin" ]]; then
    echo "run_fuzz: target fuzz_$name was not built ($bin missing)" >&2
    failed+=("$name")
    continue
  fi
  corpus="$work/corpus-$name"
  mkdir -p "$corpus"
  if [[ -d "$fuzz_dir/corpus/$name" ]]; then
    cp -R "$fuzz_dir/corpus/$name/." "$corpus/"
  else
    echo "run_fuzz: warning: no seed corpus tests/fuzz/corpus/$name/" >&2
  fi
  dict=()
  [[ -f "$fuzz_dir/$name.dict" ]] && dict=("-dict=$fuzz_dir/$name.dict")
  artifacts="$build/fuzz-artifacts/$name"
  rm -rf "$artifacts"
  mkdir -p "$artifacts"
  log="$build/fuzz-logs/$name.log"

  echo "== fuzz_$name: ${seconds}s, seed corpus $(find "$corpus" -type f | wc -l) files"
  start=$(date +%s)
  rc=0
  "$bin" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)"
  summary+=("fuzz_$name: rc=$rc, ${execs:-?} execs in ${elapsed}s, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) files")

  found="$(find "$artifacts" -type f | head -5)"
  if [[ $rc -ne 0 || -n "$found" ]]; then
    failed+=("$name")
    echo "!! fuzz_$name failed (exit $rc); last lines of $log:" >&2
    tail -40 "$log" >&2
    for a in $found; do echo "   reproduce: $bin $a" >&2; done
  fi
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
if [[ ${#failed[@]} -ne 0 ]]; then
  echo "run_fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "run_fuzz: all targets clean"
