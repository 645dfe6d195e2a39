# Session 16: fp8 decode with 6 ring stages (3 pairs) at 2 blocks per SM (6st) against main's 4 stages at 3 blocks (main4).
source tools/bench/gpu_dist_env.sh; R=/tmp/r; rm -rf $R; mkdir -p $R; M=configs/models/llama-3.1-8b.json
{ hdr "CUDA tests, main4" "test_cuda [attention],[fp8],[keysets]"; timeout 200 $D/test_cuda "[attention],[fp8],[keysets]"; echo "exit code: $?"; } > $R/tests.log 2>&1; tail -2 $R/tests.log
for rep in 1 2; do for b in bench_attention_cuda bench_attention_6st; do
  { hdr "fp8 decode attention, $b (rep $rep)" "$b --fp8 -- 32768 131072 524288"; timeout 60 $D/$b --fp8 -- 32768 131072 524288; } > $R/fp8_${b}_$rep.jsonl 2>&1
  echo "== $b $rep"; grep -v "^#" $R/fp8_${b}_$rep.jsonl | cut -c40-175
done; done
for v in "lcllm bf16" "lcllm fp8" "lcllm_6st fp8"; do set -- $v
  { hdr "8B decode, $1 $2" "$1 bench $M --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --kv-cache-dtype $2"; timeout 120 $D/$1 bench $M --device cuda --prefill 1k --decode 32k,128k --decode-steps 16 --kv-cache-dtype $2 --json $R/e2e_$1_$2.json -q; } > $R/e2e_$1_$2.log 2>&1
  echo "== $1 $2"; grep -E "^full +(32768|131072)" $R/e2e_$1_$2.log | tail -2
done
tar -C /tmp -cJf $OUT/r.tar.xz r
