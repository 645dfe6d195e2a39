#!/usr/bin/env bash
# Every policy on a real model at one context length, at 8x attention sparsity (E10 item 7): calibrates the model on
# natural-text probes, writes the plans, and runs `lcllm eval niah` over the license-text haystack, scored by
# string match and by the teacher-forced log-probability of the needle's value (retained vs full).
#
# Usage: tools/eval/real_model_policies.sh MODEL.gguf OUT_DIR LENGTH [SAMPLES] [DEPTHS] [DEVICE]
#   e.g. tools/eval/real_model_policies.sh build/models/gemma-3-270m-q4_k_m.gguf runs/gemma_4k 4096 2 20,40,60,80
# Budget: every sparse policy attends to LENGTH / 8 keys per global layer and KV head in decode:
#   streaming  sink 64 + recent (B - 64)             (StreamingLLM)
#   tidal      top-k = B at the selection and calibrated re-selection layer (TidalDecode)
#   hylra      k = B, DP over the calibrated profile  (HyLRA)
#   retrieval  calibrated retrieval heads FULL, the others sink 64 + recent (B - 64)  (DuoAttention)
#   hip        k = B / 2 blocks of 2 + sink 64 + recent (B / 2 - 64), prefill and decode  (HiP)
# HAYSTACK=FILE uses that haystack instead of writing one (a machine without Debian's common-licenses, e.g. the GPU
# machine, gets the same bytes from here).
# Writes OUT_DIR/plans/*.json, OUT_DIR/calibration.log and OUT_DIR/niah/ (comparison.md, summary.csv, heat maps).
set -euo pipefail
model=${1:?usage: $0 MODEL.gguf OUT_DIR LENGTH [SAMPLES] [DEPTHS] [DEVICE]}
out=${2:?OUT_DIR}
len=${3:?LENGTH}
samples=${4:-2}
depths=${5:-20,40,60,80}
device=${6:-auto}
lcllm=${LCLLM:-build/lcllm}
here=$(cd "$(dirname "$0")" && pwd)
budget=$((len / 8))
if (( budget < 256 )); then echo "error: LENGTH must be >= 2048 (the budget LENGTH/8 must hold sink 64 + a window)" >&2; exit 1; fi
mkdir -p "$out/plans"
if [[ -n ${HAYSTACK:-} ]]; then cp "$HAYSTACK" "$out/haystack.txt"; else "$here/make_license_haystack.sh" "$out/haystack.txt"; fi

# Calibration probes: 2048 tokens of natural text; the plans' k is measured at the same share (k / LENGTH).
"$lcllm" calibrate "$model" --haystack "$out/haystack.txt" --context 2048 --probes 4 --k "$budget" \
  --reference-context "$len" --sink 64 --recent $((budget - 64)) --plan hylra -o "$out/plans/hylra.json" -q \
  2>&1 | tee "$out/calibration.log"
python3 - "$out/plans" "$budget" <<'PY'
import json, sys
d, budget = sys.argv[1], int(sys.argv[2])
report = json.load(open(f"{d}/hylra.report.json"))
for kind in ("tidal", "retrieval"):
    plan = dict(report["plans"][kind]); plan["name"] = kind
    json.dump(plan, open(f"{d}/{kind}.json", "w"), indent=1)
json.dump({"name": "streaming", "preset": "streaming", "params": {"sink": 64, "recent": budget - 64}},
          open(f"{d}/streaming.json", "w"), indent=1)
json.dump({"name": "hip", "preset": "hip",
           "params": {"k": budget // 2, "block_size_k": 2, "sink": 64, "recent": budget // 2 - 64,
                      "prefill_dense_below": 0, "decode_dense_below": 0}},  # the sparse rule at every length
          open(f"{d}/hip.json", "w"), indent=1)
PY
p="$out/plans"
"$lcllm" eval niah "$model" --device "$device" --lengths "$len" --depths "$depths" --samples "$samples" \
  --haystack "$out/haystack.txt" --batch-size 4 \
  --policy "full,$p/streaming.json,$p/tidal.json,$p/hylra.json,$p/retrieval.json,$p/hip.json" -o "$out/niah"
