#!/usr/bin/env bash
# Compiles every CUDA kernel (kernels/*.cu, and the experiment programs of tools/bench/dev/*.cu) for sm_90a, the Hopper target the GPU builds use, with NVIDIA's nvcc
# from PyPI: CI has neither a GPU nor a CUDA toolkit, and E9 asks that CI compile every kernel for sm_90a (wgmma,
# setmaxnreg and the other sm_90a-only instructions compile only for that target). The toolkit pieces (nvcc, NVVM,
# the runtime and CCCL headers), pinned to the release the GPU builds use, are unpacked once into build/cuda-toolkit.
# No CUDA libraries are linked: this checks that the device code compiles, not that it runs.
#   tools/check_cuda_kernels.sh [PIP]      (PIP: the pip to download with; default python3 -m pip)
# Exit 0: every kernel compiled; 1: a kernel failed (its errors are printed); 2: the toolkit could not be fetched.
set -uo pipefail
cd "$(dirname "$0")/.."
pip=${1:-python3 -m pip}
toolkit=build/cuda-toolkit
pins="nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85"
nvcc=$toolkit/nvidia/cu13/bin/nvcc
if [ ! -x "$nvcc" ] || [ "$(cat "$toolkit/pins" 2>/dev/null)" != "$pins" ]; then
  rm -rf "$toolkit" && mkdir -p "$toolkit/wheels"
  # shellcheck disable=SC2086
  if ! $pip download -q --disable-pip-version-check --no-deps -d "$toolkit/wheels" $pins; then
    echo "check_cuda_kernels.sh: could not download the nvcc wheels ($pins)" >&2
    exit 2
  fi
  for w in "$toolkit"/wheels/*.whl; do python3 -m zipfile -e "$w" "$toolkit" || exit 2; done
  chmod +x "$toolkit"/nvidia/cu13/bin/* "$toolkit"/nvidia/cu13/nvvm/bin/*
  rm -rf "$toolkit/wheels"
  echo "$pins" > "$toolkit/pins"
fi
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
# The flags of the CMake build's CUDA objects (CMakeLists.txt), one file per job; the dev programs are C++20
# (tools/bench/dev/README.md).
compile() {
  local log="$obj/$(basename "$1").log" std=c++17
  [[ $1 == tools/bench/dev/* ]] && std=c++20
  if "$nvcc" -I. -Iinclude -Isrc -std=$std -O3 -DNDEBUG --expt-relaxed-constexpr \
      --generate-code=arch=compute_90a,code=sm_90a -c "$1" -o "$obj/$(basename "$1").o" > "$log" 2>&1; then
    echo "ok      $1"
  else
    echo "FAILED  $1"; cat "$log"
    return 1
  fi
}
export -f compile
export nvcc obj
kernels=(kernels/*.cu tools/bench/dev/*.cu)
start=$SECONDS
if printf '%s\n' "${kernels[@]}" | xargs -P "$(nproc)" -I{} bash -c 'compile "$@"' _ {}; then
  echo "check_cuda_kernels.sh: ${#kernels[@]} CUDA files compiled for sm_90a in $((SECONDS - start)) s ($("$nvcc" --version | tail -1))"
  exit 0
fi
echo "check_cuda_kernels.sh: a kernel failed to compile for sm_90a" >&2
exit 1
