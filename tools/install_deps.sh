#!/usr/bin/env bash
# Installs everything lcllm needs to build and test on Debian 12 (run as root). Idempotent.
#   build: compiler, CMake, Ninja; libraries: sentencepiece, nlohmann-json, spdlog, CLI11, PCRE2;
#   tests: Catch2, python3-venv + pip (the openai client for the server tests, tools/requirements-test.txt); fuzzing: clang + its sanitizer runtimes.
# The CUDA toolkit is optional: when nvcc is on PATH (or under /usr/local/cuda), CMake builds the CUDA backend.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "install_deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
packages=(
  build-essential cmake ninja-build pkg-config git
  libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libpcre2-dev
  catch2
  clang libclang-rt-dev
  python3 python3-venv python3-pip
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install_deps.sh: all dependencies present"
