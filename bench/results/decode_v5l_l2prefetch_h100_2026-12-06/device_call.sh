bash tools/bench/run_decode_version_check.sh head
source tools/bench/gpu_dist_env.sh
{ hdr "CUDA suite on HEAD (no patch)" "test_cuda_head"; timeout 300 $D/test_cuda_head; echo "exit code: $?"; } > /tmp/r/suite_head.log 2>&1; tail -3 /tmp/r/suite_head.log
tar -C /tmp -cJf $OUT/r.tar.xz r
