#!/usr/bin/env bash
# Packs what a GPU machine without Debian packages needs to run the CUDA build: the binaries of ./build and the
# shared libraries they load from outside the CUDA toolkit, as one xz archive (the device call carries <= 64 MiB).
#   tools/bench/make_gpu_dist.sh OUT.tar.xz [extra files...]
#   DIST_SKIP="bench_attention_cuda lcllm" tools/bench/make_gpu_dist.sh OUT.tar.xz   (leave those binaries out)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "$1"); shift
dist=build/dist
rm -rf "$dist"; mkdir -p "$dist"
bins=()
for b in build/lcllm build/tests/test_cuda build/bench_attention_cuda build/bench_sparse_attention "$@"; do
  [[ " ${DIST_SKIP:-} " == *" $(basename "$b") "* ]] && continue
  [ -f "$b" ] && bins+=("$b")
done
cp "${bins[@]}" "$dist/"
for lib in $(ldd "${bins[@]}" | awk '/=> \// {print $3}' | grep -E 'spdlog|fmt|sentencepiece|pcre2|protobuf|httplib|brotli' | sort -u); do
  cp -L "$lib" "$dist/"
done
strip --strip-unneeded "$dist"/* 2>/dev/null || true
# One xz stream with a dictionary larger than the archive: the binaries share most of their bytes (the same CUDA
# kernels), so the archive is ~1/3 of a default-xz one (8.7 MB instead of 31.7 MB for five binaries).
tar -C build -cf - dist | xz -T1 --lzma2=preset=9,dict=192MiB > "$out"
ls -la "$out"
