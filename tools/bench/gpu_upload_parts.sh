#!/usr/bin/env bash
# Moves a file larger than one device call may carry (64 MiB with the ~39 MB of tracked files) to the device in
# parts: splits FILE into gpu_carry/parts/NAME.partNN of PART_MB (default 22) MB and prints, per part, the run
# call that copies it to /tmp/up/ on the device (calls must follow each other within ~30 s so /tmp stays), then
# the command a later call runs to reassemble and check it. Example (Gemma 3 270M, 253 MB: 12 calls):
#   tools/bench/gpu_upload_parts.sh /tmp/lcllm_models/gemma-3-270m-q4_k_m.gguf gemma.gguf
set -euo pipefail
file=${1:?usage: $0 FILE NAME [PART_MB]}
name=${2:?NAME}
mb=${3:-22}
cd "$(dirname "$0")/../.."
mkdir -p gpu_carry/parts
rm -f gpu_carry/parts/"$name".part*
split -b "${mb}M" -d -a 2 "$file" gpu_carry/parts/"$name".part
sum=$(sha256sum "$file" | cut -d' ' -f1)
echo "$sum" > gpu_carry/parts/"$name".sha256
for p in gpu_carry/parts/"$name".part*; do
  echo "run: command='mkdir -p /tmp/up && cp $p /tmp/up/ && ls /tmp/up | wc -l'  carry=[\"$p\"]"
done
echo "reassemble (first thing of the call that uses it):"
echo "  cat /tmp/up/$name.part* > /tmp/$name && echo '$sum  /tmp/$name' | sha256sum -c"
