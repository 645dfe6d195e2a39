#!/usr/bin/env bash
# One device call for two measurements the wgmma prefill session left open: Llama-3.1-8B `--policy hip` time to
# first token at 32k / 128k now that HiP's prefill rows run as key-set tiles on the wgmma kernel (E9 target: <= 3 s
# at 128k), with full attention in the same call, then E11's load test (run_serve_gpu_bench.sh, SKIP_PREFIX=1).
# Carry gpu_carry/ (dist.tar.xz, commit.txt, tok_llama3.tar.xz); returns $OUT/h (hip) and $OUT/r.tar.xz (load).
source tools/bench/gpu_dist_env.sh
H=$OUT/h; mkdir -p $H; M=configs/models/llama-3.1-8b.json
for P in hip full; do
  { hdr "Llama-3.1-8B end to end, --policy $P" "lcllm bench $M --device cuda --policy $P --prefill 32k,128k --decode 128k --decode-steps 4";
    timeout 150 $D/lcllm bench $M --device cuda --policy $P --prefill 32k,128k --decode 128k --decode-steps 4 --json $H/e2e_8b_$P.json -q; } > $H/e2e_8b_$P.log 2>&1
  tail -6 $H/e2e_8b_$P.log
done
SKIP_PREFIX=1 bash tools/bench/run_serve_gpu_bench.sh
