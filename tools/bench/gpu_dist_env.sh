# Sourced by the device-call scripts (run_*_gpu_checks.sh): unpacks gpu_carry/dist.tar.xz to /tmp/dist (D), sets the
# library path, reports missing shared libraries, and defines hdr TITLE COMMAND, the header every committed log
# starts with (card, date, commit, command).
tar -xJf gpu_carry/dist.tar.xz -C /tmp && D=/tmp/dist && export LD_LIBRARY_PATH=$D:/usr/local/cuda/lib64
export PATH=$PATH:/usr/local/cuda/bin
ldd $D/* 2>/dev/null | grep "not found"
card=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
commit=$(cat gpu_carry/commit.txt)
hdr() { echo "# $1"; echo "# card: $card"; echo "# date: $(date -u +%FT%TZ)"; echo "# commit: $commit"; echo "# command: $2"; }
