#!/usr/bin/env bash
# One device call comparing a decode kernel version with an earlier build (the decode 5g-5j checks of session 16):
# run_fp8_decode_check.sh (fp8 tests, Llama-3.1-8B decode with bf16 and fp8 KV, fp8 memcheck), then
# run_prefill_v3_check.sh's kernel stage (the whole CUDA suite; prefill, bf16 and fp8 decode attention of this build
# and of every carried dist/bench_attention_base*; attention-only decode of full and hip), the base build's bf16 decode
# attention, and memcheck of the key-set and sparse tests. Everything comes back as $OUT/r.tar.xz.
#   bash tools/bench/make_gpu_dist.sh gpu_carry/dist.tar.xz /tmp/bench_attention_base_NAME
#   bash tools/bench/run_decode_version_check.sh NAME       (on the device; carry gpu_carry/)
name=${1:?usage: $0 BASE_NAME (the carried dist/bench_attention_base_NAME)}
source tools/bench/gpu_dist_env.sh
[ -x $D/bench_attention_base_$name ] || { echo "error: dist/bench_attention_base_$name was not carried" >&2; exit 2; }
bash tools/bench/run_fp8_decode_check.sh
QUICK=1 SKIP_SDPA=1 bash tools/bench/run_prefill_v3_check.sh
mkdir -p /tmp/r  # made by run_prefill_v3_check.sh, unless it stopped early
{ hdr "bf16 decode attention, base" "bench_attention_base_$name -- 131072 524288"; timeout 60 $D/bench_attention_base_$name -- 131072 524288; } > /tmp/r/attention_decode_base.jsonl 2>&1
grep -v "^#" /tmp/r/attention_decode_base.jsonl | cut -c1-200
{ hdr "memcheck" "compute-sanitizer memcheck test_cuda [keysets],[sparse]"; timeout 90 compute-sanitizer --tool memcheck --error-exitcode 99 $D/test_cuda "[keysets],[sparse]"; echo "exit code: $?"; } > /tmp/r/memcheck_ks.log 2>&1
tail -2 /tmp/r/memcheck_ks.log
cp -r $OUT/fp8 /tmp/r/ 2>/dev/null; tar -C /tmp -cJf $OUT/r.tar.xz r
