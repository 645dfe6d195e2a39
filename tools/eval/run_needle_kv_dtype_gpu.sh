#!/usr/bin/env bash
# fp8 against bf16 KV on models/needle on the GPU (E11's "needle accuracy unchanged on models/needle"), the same
# command as run_fp8_kv_gpu_checks.sh's, rerun for the rotated fp8 cache (session 26); then `lcllm run` on
# models/needle with a ~25k-token prompt file at --chunk-size 0 (auto: 4096 on cuda) and 256. Carry gpu_carry/
# (dist.tar.xz, commit.txt, haystack.txt); everything comes back as $OUT/r.tar.xz.
#   bash tools/eval/run_needle_kv_dtype_gpu.sh
source tools/bench/gpu_dist_env.sh
R=/tmp/r; rm -rf $R; mkdir -p $R
pack() { tar -C /tmp -cJf $OUT/r.part r && mv $OUT/r.part $OUT/r.tar.xz; }
for dt in bf16 fp8; do
  { hdr "niah models/needle, $dt KV" "lcllm eval niah models/needle --device cuda --kv-cache-dtype $dt --policy full,tidal,hylra,streaming --lengths 1k,4k,8k,16k";
    timeout 120 $D/lcllm eval niah models/needle --device cuda --kv-cache-dtype $dt --policy full,tidal,hylra,streaming --lengths 1k,4k,8k,16k --out $R/niah_needle_kv_$dt -q; echo "exit code: $?"; } > $R/niah_needle_kv_$dt.log 2>&1
  echo "== $dt"; tail -8 $R/niah_needle_kv_$dt.log; pack
done
head -c 47000 gpu_carry/haystack.txt > /tmp/prompt.txt
for cs in 0 256; do
  { hdr "lcllm run, models/needle, ~25k-token prompt, --chunk-size $cs" "lcllm run models/needle --device cuda --prompt-file prompt.txt -n 16 --ctx-size 32768 --chunk-size $cs";
    timeout 60 $D/lcllm run models/needle --device cuda --prompt-file /tmp/prompt.txt -n 16 --ctx-size 32768 --chunk-size $cs; rc=$?; echo; echo "exit code: $rc"; } > $R/run_needle_chunk$cs.log 2>&1
  echo "== run chunk $cs"; tail -5 $R/run_needle_chunk$cs.log; pack
done
