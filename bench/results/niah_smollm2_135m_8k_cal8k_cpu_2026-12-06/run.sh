set -e
L=/tmp/evalrun/lcllm_cpu
M=/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf
date
$L calibrate $M --haystack haystack.txt --context 8192 --probes 4 --k 1024 --reference-context 8192 --sink 64 --recent 960 --plan hylra -o plans/hylra.json -q > calibration.log 2>&1
date
python3 - plans <<'PY'
import json, sys
d = sys.argv[1]
report = json.load(open(f"{d}/hylra.report.json"))
for kind in ("tidal", "retrieval"):
    plan = dict(report["plans"][kind]); plan["name"] = kind
    json.dump(plan, open(f"{d}/{kind}.json", "w"), indent=1)
PY
$L eval niah $M --device cpu --lengths 8192 --depths 20,40,60,80 --samples 1 --haystack haystack.txt --batch-size 4 --policy full,plans/tidal.json,plans/hylra.json,plans/retrieval.json -o niah > eval.log 2>&1
date
