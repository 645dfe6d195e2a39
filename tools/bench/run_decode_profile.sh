#!/usr/bin/env bash
# One device call: the profiler evidence for the decode path, logs with card, date and command at the top.
#   1. decode_graphs.log + e2e_8b_*.json: `lcllm bench` of Llama-3.1-8B (random bf16 weights, real shapes) decoding
#      at 32k with CUDA graphs off and on (LCLLM_CUDA_GRAPHS=0/1), then at 128k with graphs on.
#   2. ncu_decode.{log,csv}, ncu_decode_summary.txt: ncu on a window of consecutive kernels (about three layers) of
#      one decode step of the same 8B bench at 32k, graphs off; per-kernel table (time, DRAM % of peak, GB/s read,
#      achieved occupancy = sm__warps_active.avg.pct_of_peak_sustained_active).
#   3. ncu_attention.log: ncu sections of kernel_attention_decode_v2 (+ merge) at 128k and kernel_attention_prefill_v2
#      at 8k (bench_attention_cuda), with each kernel's warp-stall breakdown.
#   4. sass_decode.txt, sass_prefill.txt, sass_histogram.txt: the SASS of the v2 attention kernels (from
#      bench_attention_cuda; cuobjdump) and opcode histograms, plus cuobjdump's register/stack/local use.
# At most 8 files come back from a device call: unless BUNDLE=0, the bulky or secondary files (ncu_decode.csv,
# ncu_decode.log, sass_decode.txt, sass_prefill.txt) end up in OUT_DIR/profile_extra.tar.gz (`tar xzf` it).
# stdout ends with a RECAP block (most important first), since only the tail of stdout comes back.
#   tools/bench/run_decode_profile.sh DIST_DIR OUT_DIR
# DIST_DIR holds lcllm, bench_attention_cuda, test_cuda and the shared libraries the target machine lacks.
# Knobs (environment): CONFIG (model config, default configs/models/llama-3.1-8b.json), TIME_BUDGET (seconds for the
# whole script, default 540), NCU_SKIP (kernel launches skipped before the decode window, default 3000), NCU_COUNT
# (kernels in the window, default 60), NCU_FILTER (ncu kernel-name regex for the window; default none = every
# kernel, so the window is a contiguous slice of the step and NCU_SKIP counts every launch), BUNDLE (1).
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 DIST_DIR OUT_DIR" >&2
  exit 2
fi
DIST=$(realpath "$1")
mkdir -p "$2"
OUT_DIR=$(realpath "$2")
cd "$(dirname "$(realpath "$0")")/../.." || exit 1  # repository root: configs/ paths are relative to it
export PATH="/usr/local/cuda/bin:$PATH"
export LD_LIBRARY_PATH="$DIST:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export LC_ALL=C PYTHONUNBUFFERED=1
CONFIG=${CONFIG:-configs/models/llama-3.1-8b.json}
BUDGET=${TIME_BUDGET:-540}
T0=$SECONDS
TMPD=$(mktemp -d /tmp/decode_profile.XXXXXX)
RECAP=$TMPD/recap
mkdir -p "$RECAP"
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)
header() {  # title, command
  echo "# $1"
  echo "# card: $card"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "# command: $2"
}
# Seconds a step may take: at most $1, and never past the budget (keeping $2 seconds, default 40, for what follows).
# Prints 0 when less than 10 seconds would be left: the caller skips the step.
tmo() {
  local want=$1 left=$((BUDGET - (SECONDS - T0) - ${2:-40}))
  ((left < want)) && want=$left
  ((want < 10)) && want=0
  echo "$want"
}
note() { echo "$*"; echo "$*" >> "$RECAP/0_notes.txt"; }
elapsed() { echo "$((SECONDS - T0)) s"; }

echo "card: $card"
for b in lcllm bench_attention_cuda; do
  [ -x "$DIST/$b" ] || note "missing binary: $DIST/$b"
  missing=$(ldd "$DIST/$b" 2>/dev/null | grep "not found")
  [ -n "$missing" ] && note "missing libraries for $b: $missing"
done
NCU=$(command -v ncu || true)
[ -z "$NCU" ] && note "ncu not found: steps 2 and 3 skipped"
[ -f "$CONFIG" ] || note "config not found: $CONFIG (run from the repository root?)"

# ---- 1. end-to-end decode, CUDA graphs off / on, same call ---------------------------------------------------------
LOG=$OUT_DIR/decode_graphs.log
bench_e2e() {  # label graphs decode_len
  local graphs=$2 dec=$3 json=$OUT_DIR/e2e_8b_$1.json t
  t=$(tmo 150 200)
  echo
  echo "## LCLLM_CUDA_GRAPHS=$graphs lcllm bench $CONFIG --device cuda --prefill 1k --decode $dec --decode-steps 64" \
    "--json $json -q"
  if [ "$t" = 0 ]; then echo "skipped: time budget"; return; fi
  LCLLM_CUDA_GRAPHS=$graphs timeout -k 10 "$t" "$DIST/lcllm" bench "$CONFIG" --device cuda --prefill 1k \
    --decode "$dec" --decode-steps 64 --json "$json" -q
  echo "exit code: $?"
}
{
  header "end-to-end decode of $(basename "$CONFIG" .json) (random bf16 weights): 32k graphs off, 32k graphs on, 128k graphs on" \
    "LCLLM_CUDA_GRAPHS={0,1} lcllm bench $CONFIG --device cuda --prefill 1k --decode {32k,128k} --decode-steps 64 --json ... -q"
  bench_e2e 32k_nographs 0 32k
  bench_e2e 32k_graphs 1 32k
  bench_e2e 128k_graphs 1 128k
} > "$LOG" 2>&1
python3 - "$OUT_DIR" "$CONFIG" > "$RECAP/1_e2e.txt" 2>&1 <<'PY'
import json, os, sys
out, config = sys.argv[1:3]
res = {}
print(f"== e2e decode, {os.path.basename(config)}, prefill 1k, 64 decode steps (lcllm bench)")
for label in ("32k_nographs", "32k_graphs", "128k_graphs"):
    path = os.path.join(out, f"e2e_8b_{label}.json")
    try:
        j = json.load(open(path))
    except (OSError, ValueError) as e:
        print(f"  {label:13s}: no result ({e.__class__.__name__})")
        continue
    for d in j.get("decode", []):
        res[label] = d["ms_per_token"]
        print(f"  {label:13s}: {d['ms_per_token']:8.3f} ms/token {d['tokens_per_s']:7.1f} tok/s  floor "
              f"{d['floor_ms']:7.3f} ms ({100 * d['fraction_of_floor']:3.0f}% of floor)  ctx {d['context']}")
    if label == "32k_nographs":
        print(f"  card {j.get('card')}, copy {j.get('copy_gbps', 0):.0f} GB/s, GEMM {j.get('gemm_tflops', 0):.0f} "
              f"TFLOP/s, weights {j.get('weight_bytes', 0) / 1e9:.2f} GB, policy {j.get('policy')}")
if "32k_nographs" in res and "32k_graphs" in res:
    a, b = res["32k_nographs"], res["32k_graphs"]
    print(f"  graphs on vs off at 32k: {a / b:.3f}x ({a - b:+.3f} ms/token saved)")
PY
if ! grep -q "ms/token" "$RECAP/1_e2e.txt"; then  # no JSON: the bench's own lines, if any
  grep -E "^## |decode at|^ +[0-9]+ +[0-9.]+ +[0-9.]+ +[0-9]+%|exit code|rror" "$LOG" >> "$RECAP/1_e2e.txt"
fi
echo "== 1. e2e decode done ($(elapsed))"; cat "$RECAP/1_e2e.txt"

# ---- 2. ncu: a window of one decode step, 8B at 32k, graphs off ---------------------------------------------------
LOG=$OUT_DIR/ncu_decode.log
CSV=$OUT_DIR/ncu_decode.csv
SUMMARY=$OUT_DIR/ncu_decode_summary.txt
METRICS=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,\
sm__warps_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,\
launch__registers_per_thread,launch__occupancy_limit_registers,sm__maximum_warps_per_active_cycle_pct,\
launch__grid_size,launch__block_size,launch__occupancy_limit_shared_mem
skip=${NCU_SKIP:-3000}
count=${NCU_COUNT:-60}
filter=${NCU_FILTER:-}
if [ -n "$NCU" ]; then
  : > "$LOG"
  for attempt in 1 2; do
    t=$(tmo 240 170)
    if [ "$t" = 0 ]; then echo "attempt $attempt skipped: time budget" >> "$LOG"; break; fi
    fargs=()
    [ -n "$filter" ] && fargs=(--kernel-name "regex:$filter")
    cmd="LCLLM_CUDA_GRAPHS=0 ncu --target-processes all --launch-skip $skip --launch-count $count ${filter:+--kernel-name regex:$filter }--metrics $METRICS -o decode lcllm bench $CONFIG --device cuda --prefill 1k --decode 32k --decode-steps 8 -q; ncu --import decode.ncu-rep --csv --page raw --print-units base > ncu_decode.csv"
    rm -f "$TMPD/decode.ncu-rep" "$CSV"
    {
      header "ncu, decode step window of $(basename "$CONFIG" .json) at 32k, graphs off (attempt $attempt)" "$cmd"
      LCLLM_CUDA_GRAPHS=0 timeout -k 10 "$t" "$NCU" --target-processes all -f -o "$TMPD/decode" \
        --launch-skip "$skip" --launch-count "$count" "${fargs[@]}" --metrics "$METRICS" \
        "$DIST/lcllm" bench "$CONFIG" --device cuda --prefill 1k --decode 32k --decode-steps 8 -q
      echo "exit code: $?"
    } > "$TMPD/attempt.log" 2>&1
    cat "$TMPD/attempt.log" >> "$LOG"
    if [ -f "$TMPD/decode.ncu-rep" ]; then
      "$NCU" --import "$TMPD/decode.ncu-rep" --csv --page raw --print-units base > "$CSV" 2>> "$LOG"
      grep -q '^"ID"' "$CSV" ||  # an ncu without --print-units: its own units (the summary scales durations)
        "$NCU" --import "$TMPD/decode.ncu-rep" --csv --page raw > "$CSV" 2>> "$LOG"
    fi
    rows=0
    [ -f "$CSV" ] && rows=$(grep -c '^"[0-9]' "$CSV")
    echo "attempt $attempt: launch-skip $skip, $rows kernels profiled" >> "$LOG"
    if grep -q "attention_decode" "$CSV" 2> /dev/null; then break; fi
    if [ "$rows" = 0 ] && grep -q "==ERROR==" "$TMPD/attempt.log"; then
      note "ncu decode: ncu failed: $(grep -m1 "==ERROR==" "$TMPD/attempt.log")"
      break
    fi
    # No decode attention in the window: before the decode (prefill, warm-up) or past the end of the run.
    if [ "$rows" -gt 0 ]; then skip=$((skip + 2500)); else skip=$((skip / 2)); fi
    echo "no attention_decode kernel in the window; retrying with launch-skip $skip" >> "$LOG"
  done
  rm -f "$TMPD/decode.ncu-rep"
  python3 - "$CSV" "$SUMMARY" "$skip" "$count" > "$RECAP/2_ncu_decode.txt" 2>&1 <<'PY'
import csv, math, re, sys
src, out, skip, count = sys.argv[1:5]
def short(n):
    n = re.sub(r"^void\s+", "", n).replace("(anonymous namespace)::", "")
    n = re.sub(r"\b\w+::", "", n)
    depth = 0
    for i, ch in enumerate(n):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            n = n[:i]
            break
    return n if len(n) <= 64 else n[:61] + "..."
try:
    lines = open(src, errors="replace").read().splitlines()
except OSError:
    lines = []
start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
if start is None:
    msg = "== 2. ncu decode window: no ncu results (see ncu_decode.log)"
    print(msg)
    open(out, "w").write(msg + "\n")
    sys.exit(0)
rows = list(csv.reader(lines[start:]))
hdr, data = rows[0], [r for r in rows[1:] if r]
units = {}
if data and data[0][0] == "":
    units = dict(zip(hdr, data[0]))
    data = data[1:]
col = {h: i for i, h in enumerate(hdr)}
scale_ns = {"ns": 1, "nsecond": 1, "us": 1e3, "usecond": 1e3, "ms": 1e6, "msecond": 1e6, "s": 1e9, "second": 1e9}
def num(r, key):
    i = col.get(key)
    if i is None or i >= len(r):
        return math.nan
    try:
        v = float(r[i].replace(",", "").strip())
    except ValueError:
        return math.nan
    if key == "gpu__time_duration.sum":
        v *= scale_ns.get(units.get(key, "ns"), 1)
    return v
name_col = col.get("Kernel Name", col.get("Function Name"))
ks = []
for r in data:
    ks.append(dict(name=short(r[name_col]) if name_col is not None else "?", ns=num(r, "gpu__time_duration.sum"),
                   dram=num(r, "dram__throughput.avg.pct_of_peak_sustained_elapsed"),
                   rd=num(r, "dram__bytes_read.sum"), occ=num(r, "sm__warps_active.avg.pct_of_peak_sustained_active"),
                   sm=num(r, "sm__throughput.avg.pct_of_peak_sustained_elapsed"),
                   regs=num(r, "launch__registers_per_thread"), theo=num(r, "sm__maximum_warps_per_active_cycle_pct"),
                   lim_reg=num(r, "launch__occupancy_limit_registers"),
                   lim_smem=num(r, "launch__occupancy_limit_shared_mem"),
                   grid=num(r, "launch__grid_size"), block=num(r, "launch__block_size")))
total = sum(k["ns"] for k in ks if not math.isnan(k["ns"]))
def mean(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return sum(xs) / len(xs) if xs else math.nan
def same(xs):
    s = {x for x in xs if not math.isnan(x)}
    return f"{int(next(iter(s)))}" if len(s) == 1 else ("var" if s else "-")
groups = {}
for k in ks:
    groups.setdefault(k["name"], []).append(k)
n_att = sum(1 for k in ks if "attention_decode" in k["name"] and "merge" not in k["name"])
o = []
o.append(f"== 2. ncu decode window (8B, 32k, graphs off): {len(ks)} kernels from launch-skip {skip} (count {count}), "
         f"{total / 1e3:.1f} us of kernel time, {n_att} decode-attention launches (about one per layer)")
o.append("   per kernel name, by total time; DRAM% = dram__throughput % of peak; occ% = achieved occupancy "
         "(sm__warps_active); theo% = theoretical; lim r/s = block limit from registers/shared memory")
o.append(f"   {'kernel':64s} {'n':>3s} {'mean us':>8s} {'% win':>5s} {'DRAM%':>5s} {'GB/s':>6s} {'SM%':>5s} "
         f"{'occ%':>5s} {'theo%':>5s} {'regs':>4s} {'lim r/s':>7s} {'grid':>6s} {'blk':>4s}")
for name, g in sorted(groups.items(), key=lambda kv: -sum(k["ns"] for k in kv[1] if not math.isnan(k["ns"]))):
    t = sum(k["ns"] for k in g if not math.isnan(k["ns"]))
    gbs = mean([k["rd"] / k["ns"] for k in g if k["ns"] > 0])
    o.append(f"   {name:64s} {len(g):3d} {mean([k['ns'] for k in g]) / 1e3:8.2f} "
             f"{100 * t / total if total else 0:5.1f} {mean([k['dram'] for k in g]):5.1f} {gbs:6.0f} "
             f"{mean([k['sm'] for k in g]):5.1f} {mean([k['occ'] for k in g]):5.1f} {mean([k['theo'] for k in g]):5.1f} "
             f"{same([k['regs'] for k in g]):>4s} {same([k['lim_reg'] for k in g]) + '/' + same([k['lim_smem'] for k in g]):>7s} "
             f"{same([k['grid'] for k in g]):>6s} {same([k['block'] for k in g]):>4s}")
table = "\n".join(o)
seq = ["", "   launch order in the window:",
       f"   {'#':>3s} {'kernel':64s} {'us':>8s} {'DRAM%':>5s} {'GB/s':>6s} {'occ%':>5s} {'grid':>7s} {'blk':>4s}"]
for i, k in enumerate(ks):
    gbs = k["rd"] / k["ns"] if k["ns"] > 0 else math.nan
    seq.append(f"   {i:3d} {k['name']:64s} {k['ns'] / 1e3:8.2f} {k['dram']:5.1f} {gbs:6.0f} {k['occ']:5.1f} "
               f"{k['grid']:7.0f} {k['block']:4.0f}")
open(out, "w").write(table + "\n" + "\n".join(seq) + "\n")
print(table)
PY
else
  echo "ncu not found" > "$SUMMARY"
  echo "== 2. ncu decode window: ncu not found" > "$RECAP/2_ncu_decode.txt"
fi
echo "== 2. ncu decode window done ($(elapsed))"; cat "$RECAP/2_ncu_decode.txt"

# ---- 3. ncu: attention kernels (bench_attention_cuda), full section text ------------------------------------------
LOG=$OUT_DIR/ncu_attention.log
ncu_attn() {  # tag, title, bench args (one string), ncu args...
  local tag=$1 title=$2 args=$3 t
  shift 3
  t=$(tmo 240 60)
  echo
  header "$title" "ncu --clock-control base $* -o $tag bench_attention_cuda $args; ncu --import $tag.ncu-rep --page details"
  if [ "$t" = 0 ]; then echo "skipped: time budget"; return; fi
  # shellcheck disable=SC2086
  timeout -k 10 "$t" "$NCU" --target-processes all --clock-control base -f -o "$TMPD/$tag" "$@" \
    "$DIST/bench_attention_cuda" $args
  echo "exit code: $?"
  if [ -f "$TMPD/$tag.ncu-rep" ]; then
    echo
    "$NCU" --import "$TMPD/$tag.ncu-rep" --page details
    "$NCU" --import "$TMPD/$tag.ncu-rep" --csv --page raw > "$TMPD/$tag.csv"
  fi
}
if [ -n "$NCU" ]; then
  {
    ncu_attn attn_decode "ncu: attention decode v2 (+ merge) at 128k context, GQA 32/8, d=128, bf16 KV" "-- 131072" \
      --kernel-name regex:attention_decode --launch-count 4 --section SpeedOfLight --section Occupancy \
      --section MemoryWorkloadAnalysis --section LaunchStats --section WarpStateStats
    ncu_attn attn_prefill "ncu: attention prefill v2 at 8k, causal, GQA 32/8, d=128" "8192 --" \
      --kernel-name regex:attention_prefill --launch-count 2 --section SpeedOfLight --section Occupancy \
      --section ComputeWorkloadAnalysis --section WarpStateStats --section LaunchStats --section InstructionStats
  } > "$LOG" 2>&1
  python3 - "$LOG" "$TMPD/attn_decode.csv" "$TMPD/attn_prefill.csv" > "$RECAP/3_ncu_attention.txt" 2>&1 <<'PY'
import csv, re, sys
log, csvs = sys.argv[1], sys.argv[2:]
keys = ["Duration", "DRAM Throughput", "Memory Throughput", "Compute (SM) Throughput", "Max Bandwidth", "Mem Busy",
        "L1/TEX Hit Rate", "L2 Hit Rate", "Registers Per Thread", "Dynamic Shared Memory Per Block",
        "Block Limit Registers", "Block Limit Shared Mem", "Theoretical Occupancy", "Achieved Occupancy",
        "Waves Per SM", "Warp Cycles Per Issued Instruction", "Issue Slots Busy", "Issued Ipc Active", "SM Busy",
        "Executed Instructions", "Avg. Active Threads Per Warp"]
head = re.compile(r"^  (\S.*?) \((\d+, \d+, \d+)\)x\((\d+, \d+, \d+)\)")
blocks, cur = {}, None
for line in open(log, errors="replace"):
    m = head.match(line)
    if m:
        name = re.sub(r"^void\s+|\(anonymous namespace\)::|\b\w+::", "", m.group(1))
        cur = re.sub(r"\(.*$", "", name).strip() + f" grid ({m.group(2)}) block ({m.group(3)})"
        blocks[cur] = []  # the last launch of each kernel and grid wins
        continue
    if cur is None:
        continue
    s = line.strip()
    for k in keys:
        if s.startswith(k + " ") and re.search(r"[\d.]+$", s):
            parts = s[len(k):].split()
            blocks[cur].append(f"{k} {' '.join(parts)}")
            break
print("== 3. ncu attention kernels (bench_attention_cuda; decode 128k, prefill 8k; last launch of each)")
for name, vals in blocks.items():
    print(f"  {name}")
    line = "    "
    for v in vals:
        if len(line) + len(v) > 118:
            print(line.rstrip(" ;"))
            line = "    "
        line += v + "; "
    print(line.rstrip(" ;"))
if not blocks:
    print("  no ncu results (see ncu_attention.log)")
# Warp-stall breakdown (cycles per issued instruction) from the WarpStateStats metrics in the reports.
pat = re.compile(r"^smsp__average_warps_issue_stalled_([a-z_]+)_per_issue_active\.ratio$")
for path in csvs:
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        continue
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        continue
    rows = list(csv.reader(lines[start:]))
    hdr, data = rows[0], [r for r in rows[1:] if r and r[0] != ""]
    stall_cols = [(i, pat.match(h).group(1)) for i, h in enumerate(hdr) if pat.match(h)]
    name_i = hdr.index("Kernel Name") if "Kernel Name" in hdr else None
    seen = {}
    for r in data:
        seen[r[name_i] if name_i is not None else "?"] = r  # last launch of each kernel
    for name, r in seen.items():
        vals = []
        for i, s in stall_cols:
            try:
                vals.append((float(r[i].replace(",", "")), s))
            except (ValueError, IndexError):
                pass
        vals.sort(reverse=True)
        tot = sum(v for v, _ in vals)
        short = re.sub(r"\(.*$", "", re.sub(r"^void\s+|\w+::|\(anonymous namespace\)::", "", name))
        if vals:
            print(f"  stalls {short} (cycles/issue, total {tot:.1f}): " +
                  ", ".join(f"{s} {v:.2f}" for v, s in vals[:7]))
        else:
            print(f"  stalls {short}: no stall metrics in the report")
PY
else
  echo "ncu not found" > "$LOG"
  echo "== 3. ncu attention: ncu not found" > "$RECAP/3_ncu_attention.txt"
fi
echo "== 3. ncu attention done ($(elapsed))"; cat "$RECAP/3_ncu_attention.txt"

# ---- 4. SASS of the v2 attention kernels: listings, opcode histograms, resource use ---------------------------------
{
  header "SASS opcode histograms of the attention kernels (cuobjdump -sass / -res-usage bench_attention_cuda)" \
    "cuobjdump -sass bench_attention_cuda; cuobjdump -res-usage bench_attention_cuda"
  t=$(tmo 60 15)
  if [ "$t" = 0 ]; then
    echo "skipped: time budget"
  else
    timeout "$t" cuobjdump -sass "$DIST/bench_attention_cuda" > "$TMPD/sass_all.txt" 2> "$TMPD/sass_err.txt"
    echo "cuobjdump -sass exit code: $? ($(wc -l < "$TMPD/sass_all.txt") lines)"
    head -5 "$TMPD/sass_err.txt"
    timeout 30 cuobjdump -res-usage "$DIST/bench_attention_cuda" > "$TMPD/res_usage.txt" 2>&1
    echo "cuobjdump -res-usage exit code: $?"
  fi
} > "$OUT_DIR/sass_histogram.txt" 2>&1
python3 - "$TMPD/sass_all.txt" "$TMPD/res_usage.txt" "$OUT_DIR" > "$RECAP/4_sass.txt" 2>&1 <<'PY'
import collections, os, re, shutil, subprocess, sys
sass, res, out = sys.argv[1:4]
FOCUS = ("ILi128ELi4E", "ILi128ELb0E", "merge")  # the instances Llama's shape (d=128, GQA 4) runs, and the merge
def demangle(names):
    tool = shutil.which("cu++filt") or shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    try:
        r = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True, timeout=30)
        dm = r.stdout.splitlines()
        if len(dm) == len(names):
            return {n: re.sub(r"\(anonymous namespace\)::|lcllm::", "", d) for n, d in zip(names, dm)}
    except (OSError, subprocess.SubprocessError):
        pass
    return {n: n for n in names}
funcs = []
cur = None
try:
    lines = open(sass, errors="replace").read().splitlines()
except OSError:
    lines = []
for line in lines:
    m = re.match(r"\s*Function\s*:\s*(\S+)", line)
    if m:
        cur = [m.group(1), []]
        funcs.append(cur)
        continue
    if cur is None:
        continue
    if re.match(r"\s*\.{6,}\s*$", line) or line.startswith("Fatbin") or re.match(r"\s*code for sm_", line):
        cur = None
        continue
    if re.match(r"^\s*/\* 0x[0-9a-f]+ \*/\s*$", line):  # second half of an instruction's encoding
        continue
    cur[1].append(re.sub(r"\s*/\* 0x[0-9a-f]+ \*/\s*$", "", line))  # drop the encoding comment
ins = re.compile(r"^\s*/\*([0-9a-f]+)\*/\s+(.*?)\s*;")
def histo(body):
    full, base = collections.Counter(), collections.Counter()
    for l in body:
        m = ins.match(l)
        if not m:
            continue
        text = re.sub(r"^@!?U?P[0-9T]+\s+", "", m.group(2).strip())
        if not text:
            continue
        op = text.split()[0]
        full[op] += 1
        base[op.split(".")[0]] += 1
    return full, base
# resource use per function: "Function NAME:" then "REG:.. STACK:.. SHARED:.. LOCAL:.."
resources = {}
try:
    rl = open(res, errors="replace").read().splitlines()
except OSError:
    rl = []
last = None
for l in rl:
    m = re.match(r"\s*Function\s+(\S+?):?\s*$", l)
    if m:
        last = m.group(1)
        continue
    if last and "REG:" in l:
        resources[last] = " ".join(l.split())
        last = None
sel = {"decode": [f for f in funcs if "kernel_attention_decode_v2" in f[0] or "kernel_attention_decode_merge" in f[0]],
       "prefill": [f for f in funcs if "kernel_attention_prefill_v2" in f[0]]}
names = sorted({f[0] for v in sel.values() for f in v} | {n for n in resources if "kernel_attention" in n})
dm = demangle(names)
focus = lambda n: any(s in n for s in FOCUS)
hist_lines, recap = [], ["== 4. SASS (bench_attention_cuda, sm_90a): the instances the Llama shape runs; "
                         "all instances in sass_histogram.txt"]
for kind, fs in sel.items():
    fs.sort(key=lambda f: (not focus(f[0]), f[0]))  # the Llama instances first
    with open(os.path.join(out, f"sass_{kind}.txt"), "w") as fo:
        for name, body in fs:
            fo.write(f"\n// ==== {dm.get(name, name)}\n// {name}\n// {resources.get(name, '')}\n")
            fo.write("\n".join(body) + "\n")
    for name, body in fs:
        full, base = histo(body)
        n = sum(base.values())
        hist_lines.append(f"\n## {dm.get(name, name)}  ({n} instructions)\n## {name}\n## {resources.get(name, '')}")
        hist_lines.append("by mnemonic: " + ", ".join(f"{k} {v}" for k, v in base.most_common()))
        hist_lines.append("by full opcode:")
        hist_lines += [f"  {v:6d} {k}" for k, v in full.most_common()]
        if focus(name):
            local = {k: v for k, v in full.items() if k.split(".")[0] in ("LDL", "STL")}
            recap.append(f"  {dm.get(name, name)[:100]}: {n} instr; {resources.get(name, 'resources ?')}")
            recap.append("    " + ", ".join(f"{k} {v}" for k, v in base.most_common(22)))
            wide = {k: v for k, v in full.items() if re.match(r"(LDG|LDGSTS|STG|LDS|STS|LDSM|HMMA|MUFU|SHFL)\b", k)}
            recap.append("    " + ", ".join(f"{k} {v}" for k, v in sorted(wide.items(), key=lambda kv: -kv[1])[:12])
                         + (f"; local memory: {local}" if local else "; no local memory (LDL/STL)"))
if not funcs:
    recap.append("  no SASS parsed (see sass_histogram.txt)")
with open(os.path.join(out, "sass_histogram.txt"), "a") as fo:
    fo.write("\n".join(recap) + "\n\n# all instances\n" + "\n".join(hist_lines) + "\n")
print("\n".join(recap))
PY
rm -f "$TMPD/sass_all.txt"
echo "== 4. SASS done ($(elapsed))"

# ---- bundle: at most 8 files come back from a device call --------------------------------------------------------
if [ "${BUNDLE:-1}" = 1 ]; then
  extra=()
  for f in ncu_decode.csv ncu_decode.log sass_decode.txt sass_prefill.txt; do
    [ -f "$OUT_DIR/$f" ] && extra+=("$f")
  done
  if [ ${#extra[@]} -gt 0 ] && tar -C "$OUT_DIR" -czf "$OUT_DIR/profile_extra.tar.gz" "${extra[@]}"; then
    (cd "$OUT_DIR" && rm -f "${extra[@]}")
    echo "files: ${extra[*]} are in profile_extra.tar.gz (tar xzf it)" > "$RECAP/9_files.txt"
  fi
fi
rm -rf "$TMPD/attn_decode.ncu-rep" "$TMPD/attn_prefill.ncu-rep"

echo
echo "==================== RECAP ($(elapsed) in all; card: $card) ===================="
cat "$RECAP"/*.txt
echo
ls -la "$OUT_DIR"
rm -rf "$TMPD"
