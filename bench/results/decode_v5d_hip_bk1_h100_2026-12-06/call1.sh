# Session 15 call 1: decode variant 1fbc9c7 (this build) vs main and 47a5b3b (carried bases), fp8 decode check
bash tools/bench/run_fp8_decode_check.sh
QUICK=1 SKIP_SDPA=1 bash tools/bench/run_prefill_v3_check.sh
