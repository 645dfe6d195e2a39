#!/usr/bin/env bash
# Writes a natural-text haystack for `lcllm eval niah|ruler --haystack FILE`: the free-software license texts that
# every Debian and Ubuntu system ships in /usr/share/common-licenses (base-files), concatenated in a fixed order
# (~250 kB, ~55k tokens: enough for 32k-token prompts). Text nobody here wrote, as the issue E10 item 7 asks; the
# SHA-256 printed last identifies it in the results.
# Usage: tools/eval/make_license_haystack.sh OUT.txt
set -euo pipefail
out=${1:?usage: $0 OUT.txt}
dir=/usr/share/common-licenses
files=(GPL-3 Apache-2.0 LGPL-2.1 MPL-2.0 GFDL-1.3 GPL-2 Artistic MPL-1.1 CC0-1.0 LGPL-3 BSD)
: > "$out"
for f in "${files[@]}"; do
  if [[ ! -r $dir/$f ]]; then
    echo "error: $dir/$f is missing (install the base-files package)" >&2
    exit 1
  fi
  cat "$dir/$f" >> "$out"
  printf '\n\n' >> "$out"
done
echo "$(wc -c < "$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1): $out"
