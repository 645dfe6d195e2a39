#!/usr/bin/env bash
# CLI behaviour a user relies on: run/info on the embedded model, --version, --help documenting every flag,
# and bad input giving one clear line with exit code 2.   usage: test_cli.sh LCLLM_BINARY [RETAINED_HEATMAP_BINARY]
set -uo pipefail
bin="$1"
root="$(cd "$(dirname "$0")/../.." && pwd)"
model="$root/models/default"
pass=0
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

check() {  # check NAME EXPECTED_RC GREP_PATTERN -- command...
  local name="$1" want_rc="$2" pattern="$3"
  shift 4
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [[ "$rc" -ne "$want_rc" ]]; then
    echo "FAIL $name: exit code $rc, expected $want_rc"; cat "$tmp/err"; fail=$((fail + 1)); return
  fi
  if [[ -n "$pattern" ]] && ! grep -qE -- "$pattern" "$tmp/out" "$tmp/err"; then
    echo "FAIL $name: output lacks /$pattern/"; cat "$tmp/out" "$tmp/err"; fail=$((fail + 1)); return
  fi
  echo "ok   $name"; pass=$((pass + 1))
}

check "version" 0 "^lcllm [0-9]+\.[0-9]+\.[0-9]+" -- "$bin" --version
check "run greedy prints ids and speed" 0 "decode [0-9.]+ tokens/s" -- \
  "$bin" run "$model" --prompt-ids 5,17,42,99,3 --max-tokens 8 --temperature 0 --quiet
check "run with a text prompt streams text" 0 "tokens/s" -- "$bin" run "$model" --prompt "The capital of France is" --max-tokens 6 --quiet
check "chat applies the model's template" 0 "prompt 2[0-9] tokens" -- \
  "$bin" run "$model" --chat --system "Be brief." --prompt "Hello there" --max-tokens 4 --quiet
printf '%s' '{{ bos_token }}USER: {{ messages[-1]["content"] }} ASSISTANT:' >"$tmp/tpl.jinja"
check "--chat-template overrides the template" 0 "prompt 9 tokens" -- \
  "$bin" run "$model" --chat --chat-template "$tmp/tpl.jinja" --prompt "Hi" --max-tokens 2 --quiet
printf '%s' '{{ raise_exception("no system messages here") }}' >"$tmp/raise.jinja"
check "template raise_exception: exit 2 with its message" 2 "no system messages here" -- \
  "$bin" run "$model" --chat --chat-template "$tmp/raise.jinja" --prompt "Hi" --quiet
check "--prompt without a tokenizer: exit 2" 2 "needs a tokenizer" -- \
  "$bin" run "$root/tests/fixtures/parity/llama2" --prompt "hi" --quiet
check "two prompts: exit 2" 2 "exactly one prompt" -- "$bin" run "$model" --prompt "a" --prompt-ids 1
check "tokenize round trip" 0 "^\[" -- bash -c "echo '\"hello world\"' | '$bin' tokenize --tokenizer '$model'"
check "tokenize bad line: exit 2" 2 "line 1" -- bash -c "echo 'not json' | '$bin' tokenize --tokenizer '$model'"
check "policy show prints the per-layer plan" 0 "SELECT" -- \
  "$bin" policy show "$root/tests/fixtures/parity/gemma3" --policy tidal
check "run with --policy streaming" 0 "tokens/s" -- "$bin" run "$model" --prompt "Hi" -n 4 --policy streaming --quiet
check "run with a plan file" 0 "tokens/s" -- "$bin" run "$model" --prompt "Hi" -n 4 --policy "$root/configs/policies/tidal.json" --quiet
for preset in hylra retrieval hip; do
  check "run with --policy $preset" 0 "tokens/s" -- "$bin" run "$model" --prompt "Hi" -n 4 --policy "$preset" --quiet
done
check "streaming heads keep a window: run reports the KV saved" 0 "streaming heads keep only a [0-9]+-token window: .* saved" -- \
  "$bin" run "$model" --prompt "Hi" -n 2 --policy streaming --quiet
check "policy show reports the KV memory a plan saves" 0 "saves 9[0-9]\.[0-9]%" -- \
  "$bin" policy show "$model" --policy streaming --ctx-size 32768
check "policy show reports the KV bytes a decode step reads" 0 "KV read per decode step at 32768 tokens: .* \([0-9.]+%\)" -- \
  "$bin" policy show "$model" --policy tidal --ctx-size 32768
check "calibrate writes a plan, a report and heat maps" 0 "wrote .*cal\.overlap\.png" -- \
  "$bin" calibrate "$model" --out "$tmp/cal.json" --plan retrieval --probes 2 --context 96 --quiet
check "the calibrated plan runs" 0 "tokens/s" -- "$bin" run "$model" --prompt "Hi" -n 2 --policy "$tmp/cal.json" --quiet
check "calibrate: unknown plan kind: exit 2" 2 "plan" -- "$bin" calibrate "$model" --out "$tmp/x.json" --plan nope
check "calibrate: unwritable output: exit 2" 2 "cannot write" -- \
  "$bin" calibrate "$model" --out "$tmp/no/such/dir/x.json" --probes 1 --context 64 --quiet
check "default device is auto, resolved and logged" 0 "device (cpu|cuda)" -- \
  "$bin" run "$model" --prompt "Hi" -n 1 --quiet --log-level info
check "run reports memory" 0 "peak RSS" -- "$bin" run "$model" --prompt-ids 5,17 --max-tokens 2 --quiet
check "info prints parameters and KV bytes" 0 "KV bytes per token" -- "$bin" info "$model"
check "info prints fp8 KV bytes per token" 0 "\(fp8, scales included\)" -- "$bin" info "$model"
check "run with an fp8 KV cache (emulated on the cpu)" 0 "fp8 emulated" -- \
  "$bin" run "$model" --prompt-ids 5,17,42 --max-tokens 4 --temperature 0 --kv-cache-dtype fp8 --device cpu --quiet
check "run --kv-cache-dtype int4: exit 2" 2 "kv-cache-dtype" -- "$bin" run "$model" --prompt "Hi" --kv-cache-dtype int4
check "policy show prints KV memory per dtype" 0 "fp8 +\(cuda\)" -- \
  "$bin" policy show "$root/tests/fixtures/parity/gemma3" --policy retrieval
check "missing model dir: exit 2" 2 "error: .*config.json" -- "$bin" run "$tmp/nope" --prompt-ids 1
check "info on missing path: exit 2" 2 "error:" -- "$bin" info "$tmp/nope"
check "bad prompt ids: exit 2" 2 "not a token id" -- "$bin" run "$model" --prompt-ids 1,x,3
check "token id beyond vocab: exit 2" 2 "outside the vocabulary" -- "$bin" run "$model" --prompt-ids 99999999
check "unknown policy: exit 2" 2 "unknown attention policy" -- "$bin" run "$model" --prompt-ids 1 --policy nope
check "bad temperature: exit 2" 2 "temperature" -- "$bin" run "$model" --prompt-ids 1 --temperature -1
check "unknown flag: exit 2" 2 "" -- "$bin" run "$model" --no-such-flag

# A model directory whose config.json is broken or names an unsupported family.
mkdir -p "$tmp/badcfg" "$tmp/unsup"
echo '{"model_type": "llama", "vocab_size": -3' >"$tmp/badcfg/config.json"
echo '{"model_type": "mamba"}' >"$tmp/unsup/config.json"
check "malformed config.json: exit 2" 2 "not valid JSON" -- "$bin" info "$tmp/badcfg"
check "unsupported model_type: exit 2" 2 "unsupported model_type 'mamba'" -- "$bin" info "$tmp/unsup"
# Truncated weights next to a valid config.
mkdir -p "$tmp/trunc" && cp "$model/config.json" "$tmp/trunc/"
head -c 100 "$model/model.safetensors" >"$tmp/trunc/model.safetensors"
check "truncated safetensors: exit 2" 2 "model.safetensors" -- "$bin" run "$tmp/trunc" --prompt-ids 1 --quiet

# bench: every policy prefills the same prompt and decodes (a row per policy in both tables and in the JSON).
check "bench: runs with two policies (a streaming row)" 0 "^streaming +64 " -- \
  "$bin" bench "$model" --device cpu --policy full,streaming --prefill 64 --decode 64 --decode-steps 1 --json "$tmp/bench.json" -q
check "bench JSON: a prefill and a decode row of streaming" 0 "^2$" -- grep -c '"policy": "streaming"' "$tmp/bench.json"

# eval niah / ruler / longbench on the embedded model (random weights: scores ~0; the pipeline is what is checked).
check "eval niah: comparison table per policy" 0 "\| streaming \|" -- \
  "$bin" eval niah "$model" --lengths 256 --depths 0,100 --policy full,streaming --out "$tmp/niah" --device cpu -q
for f in summary.csv comparison.md heatmap_full.png heatmap_streaming.png full/len_256_depth_100_sample_0.json; do
  if [[ -s "$tmp/niah/$f" ]]; then pass=$((pass + 1)); else echo "FAIL eval niah wrote no $f"; fail=$((fail + 1)); fi
done
check "eval niah resumes finished cells" 0 "4 cells \(4 resumed\)" -- \
  "$bin" eval niah "$model" --lengths 256 --depths 0,100 --policy full,streaming --out "$tmp/niah" --device cpu -q
check "eval ruler: summary per task" 0 "\| full \|" -- \
  "$bin" eval ruler "$model" --tasks niah_single,vt --lengths 256 --samples 1 --out "$tmp/ruler" --device cpu -q
check "eval ruler wrote summary.csv" 0 "^full,vt,256,1," -- cat "$tmp/ruler/summary.csv"
mkdir -p "$tmp/lb"
printf '%s\n' '{"input": "Who?", "context": "Ann wrote it.", "answers": ["Ann"], "length": 3, "dataset": "hotpotqa", "all_classes": null, "_id": "a1"}' >"$tmp/lb/hotpotqa.jsonl"
check "eval longbench: prediction file and result.json" 0 "hotpotqa: " -- \
  "$bin" eval longbench "$model" --data "$tmp/lb" --out "$tmp/lbout" --device cpu -q
check "eval longbench result.json in LongBench's layout" 0 '"hotpotqa":' -- cat "$tmp/lbout/pred/default/result.json"
check "eval niah bad length: exit 2" 2 "not a token count" -- "$bin" eval niah "$model" --lengths 1x --out "$tmp/x" -q
check "eval niah bad depths: exit 2" 2 "depth" -- "$bin" eval niah "$model" --depths 0:200:10 --out "$tmp/x" -q
check "eval niah too short a length: exit 2" 2 "cannot hold" -- \
  "$bin" eval niah "$model" --lengths 16 --depths 50 --out "$tmp/x" --device cpu -q
check "eval niah unknown policy: exit 2" 2 "unknown attention policy" -- \
  "$bin" eval niah "$model" --policy full,nope --out "$tmp/x" -q
check "eval ruler unknown task: exit 2" 2 "unknown task 'nope'" -- "$bin" eval ruler "$model" --tasks nope --out "$tmp/x" -q
check "eval longbench missing data dir: exit 2" 2 "not a directory" -- \
  "$bin" eval longbench "$model" --data "$tmp/nope" --out "$tmp/x" -q
printf '%s\n' '{"input": "q"}' >"$tmp/lb/qasper.jsonl"
check "eval longbench broken record: exit 2 naming file and line" 2 "qasper.jsonl:1: missing field" -- \
  "$bin" eval longbench "$model" --data "$tmp/lb" --out "$tmp/lbout" --device cpu -q
for sub in niah ruler longbench; do
  "$bin" eval "$sub" --help >"$tmp/help_$sub" 2>&1
  flags="--policy --out --device --threads --chunk-size --batch-size --gpu-memory-fraction --seed --quiet --tokenizer"
  case "$sub" in
    niah) flags="$flags --lengths --depths --samples --max-new-tokens" ;;
    ruler) flags="$flags --tasks --lengths --samples --max-new-tokens" ;;
    longbench) flags="$flags --data --datasets --max-length --chat --chat-template --model-name --limit --e" ;;
  esac
  for flag in $flags; do
    if grep -q -- "$flag" "$tmp/help_$sub"; then pass=$((pass + 1)); else echo "FAIL eval $sub help lacks $flag"; fail=$((fail + 1)); fi
  done
done

# --help documents every flag of run.
"$bin" run --help >"$tmp/help" 2>&1
for flag in --prompt-ids --max-tokens --temperature --top-k --top-p --min-p --repetition-penalty \
            --frequency-penalty --presence-penalty --seed --policy --device --threads --ctx-size --chunk-size \
            --prompt --chat --system --chat-template --tokenizer --print-ids --ignore-eos --quiet --gpu-memory-fraction \
            --enforce-eager; do
  if grep -q -- "$flag" "$tmp/help"; then pass=$((pass + 1)); else echo "FAIL help lacks $flag"; fail=$((fail + 1)); fi
done

# --help of calibrate and policy show documents their flags; --policy lists every preset.
"$bin" calibrate --help >"$tmp/help" 2>&1
for flag in --out --plan --tokenizer --probes --context --seed --k --reference-context --budget --threshold --sink \
            --recent --threads --quiet; do
  if grep -q -- "$flag" "$tmp/help"; then pass=$((pass + 1)); else echo "FAIL calibrate help lacks $flag"; fail=$((fail + 1)); fi
done
"$bin" policy show --help >"$tmp/help" 2>&1
for word in --policy --json --ctx-size --chunk-size full streaming tidal hylra retrieval hip; do
  if grep -q -- "$word" "$tmp/help"; then pass=$((pass + 1)); else echo "FAIL policy show help lacks $word"; fail=$((fail + 1)); fi
done
# serve: --help names every flag with its environment variable; bad input exits 2 without hanging.
"$bin" serve --help >"$tmp/serve_help" 2>&1
for flag in host port policy api-key api-key-file max-num-seqs max-model-len max-waiting served-model-name \
            default-max-tokens device threads ctx-size gpu-memory-fraction chunk-size chat-template max-body-bytes \
            http-threads read-timeout shutdown-timeout; do
  env_name="LCLLM_$(echo "$flag" | tr 'a-z-' 'A-Z_')"
  if grep -q -- "--$flag.*Env:$env_name" "$tmp/serve_help"; then pass=$((pass + 1)); else
    echo "FAIL serve --help lacks --$flag with $env_name"; fail=$((fail + 1)); fi
done
check "serve: missing model: exit 2" 2 "no such tokenizer" -- timeout 20 "$bin" serve "$tmp/none" --port 0
check "serve: bad port: exit 2" 2 "port" -- timeout 20 "$bin" serve "$model" --port 70000
check "run: a KV cache larger than the machine: a message, not bad_alloc" 1 "lower --ctx-size" -- \
  "$bin" run "$model" --prompt-ids 1,2 -n 1 --ctx-size 2147483647 --quiet
mkdir -p "$tmp/fifo_model" && mkfifo "$tmp/fifo_model/config.json"
check "run: a config.json that is a FIFO is refused at once" 2 "not a regular file" -- \
  timeout 20 "$bin" run "$tmp/fifo_model" --prompt-ids 1,2 -n 1
mkdir -p "$tmp/deep_model" && python3 -c "print('[' * 100000 + ']' * 100000)" >"$tmp/deep_model/config.json"
check "run: a config.json nested 100,000 deep is refused, not a crash" 2 "deeper than 64" -- \
  "$bin" run "$tmp/deep_model" --prompt-ids 1,2 -n 1
check "run: negative --ctx-size: exit 2" 2 "ctx-size" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --ctx-size -5
check "run: huge --chunk-size: exit 2" 2 "chunk-size" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --chunk-size 1073741824
check "run: negative --chunk-size: exit 2" 2 "chunk-size" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --chunk-size -1
check "run: --chunk-size 0 (auto) runs" 0 "generated" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --chunk-size 0
check "bench: negative --threads: exit 2" 2 "threads" -- "$bin" bench "$model" --threads -1
check "serve: empty --api-key: exit 2" 2 "api-key.*is empty" -- timeout 20 "$bin" serve "$model" --port 0 --api-key ""
check "serve: huge --max-num-seqs: exit 2" 2 "max-num-seqs" -- timeout 20 "$bin" serve "$model" --port 0 --max-num-seqs 999999999
check "serve: huge --http-threads: exit 2" 2 "http-threads" -- timeout 20 "$bin" serve "$model" --port 0 --http-threads 100000
check "serve: huge --max-waiting: exit 2" 2 "max-waiting" -- timeout 20 "$bin" serve "$model" --port 0 --max-waiting 2147483647
check "serve: negative --ctx-size: exit 2" 2 "ctx-size" -- timeout 20 "$bin" serve "$model" --port 0 --ctx-size -5
check "serve: huge --chunk-size: exit 2" 2 "chunk-size" -- timeout 20 "$bin" serve "$model" --port 0 --chunk-size 1073741824
check "run: --seed above 2^64: exit 2" 2 "seed: must be an integer in \[0, 18446744073709551615\]" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --seed 99999999999999999999999
check "run: negative --seed: exit 2" 2 "seed: must be an integer" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --seed -1
check "run: --seed 2^64-1 is fine" 0 "generated" -- "$bin" run "$model" --prompt-ids 1,2 -n 1 --seed 18446744073709551615
check "eval: --seed 2^64: exit 2" 2 "seed: must be an integer" -- "$bin" eval niah "$model" --seed 18446744073709551616
check "bench: --seed not a number: exit 2" 2 "seed: must be an integer" -- "$bin" bench "$model" --seed x
check "run: huge --max-tokens: exit 2" 2 "max-tokens.*not in range 1 to" -- "$bin" run "$model" --prompt-ids 1,2 --max-tokens 99999999999
check "run: --max-tokens 0: exit 2" 2 "max-tokens.*not in range 1 to" -- "$bin" run "$model" --prompt-ids 1,2 --max-tokens 0
check "eval: --lengths beyond 1M-ish units: exit 2" 2 "lengths" -- "$bin" eval niah "$model" --lengths 1G
check "serve: --max-connections below 8: exit 2" 2 "max-connections" -- timeout 20 "$bin" serve "$model" --port 0 --max-connections 1
check "serve: negative --max-connections-per-client: exit 2" 2 "max-connections-per-client" -- timeout 20 "$bin" serve "$model" --port 0 --max-connections-per-client -1
check "serve: --max-body-bytes 0: exit 2" 2 "max-body-bytes" -- timeout 20 "$bin" serve "$model" --port 0 --max-body-bytes 0
# Thread creation that fails part-way (address space for 4096 stacks refused) is a message, not std::terminate.
check "run: --threads the system cannot give: exit 2" 2 "cannot start 4096 CPU threads" -- bash -c "ulimit -v 3000000; exec '$bin' run '$model' --prompt-ids 1,2 -n 1 --threads 4096"
# Long prompts from a file or standard input (E11 item 4; the whole file is the prompt: 2,000 words, 2,003 tokens).
python3 -c "print('word ' * 2000)" >"$tmp/long_prompt.txt"
check "run: --prompt-file reads the whole file" 0 "prompt 2003 tokens" -- "$bin" run "$model" --prompt-file "$tmp/long_prompt.txt" -n 1 --ctx-size 4096 --chunk-size 1024
check "run: --prompt - reads stdin" 0 "prompt [0-9]+ tokens" -- bash -c "echo 'Hello there' | '$bin' run '$model' --prompt - -n 1"
check "run: --prompt and --prompt-file: exit 2" 2 "not both" -- "$bin" run "$model" --prompt x --prompt-file "$tmp/long_prompt.txt"
check "run: both from stdin: exit 2" 2 "cannot both read standard input" -- "$bin" run "$model" --chat --prompt - --system -
check "run: missing --prompt-file: exit 2" 2 "cannot read --prompt-file" -- "$bin" run "$model" --prompt-file "$tmp/none.txt"
printf '\n# only a comment\n' >"$tmp/keys"
check "serve: empty key file: exit 2" 2 "holds no key" -- timeout 20 "$bin" serve "$model" --port 0 --api-key-file "$tmp/keys"

# The retained-probability heat map tool of docs/EVALUATION.md (built beside lcllm): reads the committed comparisons,
# names the file and the rule when a table is missing or a value is not a percentage.
heat="${2:-$(dirname "$bin")/retained_heatmap}"
if [[ ! -x "$heat" ]]; then
  echo "SKIP retained_heatmap checks: $heat is not built"
else
  runs="$root/bench/results/real_models_gpu_h100_2026-12-06"
  check "retained_heatmap: two runs" 0 "6 policies x 2 runs" -- "$heat" "$tmp/r.png" "t" "a=$runs/gemma_16384/niah/comparison.md" "b=$runs/gemma_ruler_32k/comparison.md"
  check "retained_heatmap writes a PNG" 0 "^png$" -- python3 -c "import sys; print('png' if open(sys.argv[1], 'rb').read(8) == b'\\x89PNG\\r\\n\\x1a\\n' else 'not png')" "$tmp/r.png"
  printf 'Answer probability retained relative to full (%%)\n\n| policy | 4096 | all |\n|---|---:|---:|\n| full | 100.0 | 100.0 |\n| hip | 96.4 | n/a |\n' >"$tmp/bad.md"
  check "retained_heatmap: a value that is not a percentage: exit 1" 1 "bad.md: policy 'hip' has retained 'n/a'" -- "$heat" "$tmp/r.png" t "x=$tmp/bad.md"
  check "retained_heatmap: no retained table: exit 1" 1 "no \"Answer probability retained" -- "$heat" "$tmp/r.png" t "x=$root/README.md"
  check "retained_heatmap: not LABEL=PATH: exit 1" 1 "is not LABEL=PATH" -- "$heat" "$tmp/r.png" t "$tmp/bad.md"
  # A policy that shares no scored prompt with full has "-" (no data): a grey cell, not an error.
  printf 'Answer probability retained relative to full (%%)\n\n| policy | 4096 | all |\n|---|---:|---:|\n| full | 100.0 | 100.0 |\n| hip | - | - |\n' >"$tmp/dash.md"
  check "retained_heatmap: a '-' cell is no data" 0 "2 policies x 1 runs" -- "$heat" "$tmp/r.png" t "x=$tmp/dash.md"
  # --alias applies to every run, wherever it stands among them.
  check "retained_heatmap: --alias after a run still renames it" 0 "6 policies x 2 runs" -- "$heat" "$tmp/r.png" t \
    "a=$runs/gemma_16384/niah/comparison.md" --alias hip=HiP "b=$runs/gemma_ruler_32k/comparison.md"
fi

echo "$pass passed, $fail failed"
[[ "$fail" -eq 0 ]]
