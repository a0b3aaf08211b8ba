#!/bin/bash
# Records one workload of the image workloads/build-image.sh made, from the guest's first
# instruction until it prints WORKLOAD DONE (traces/README.md lists the commands and windows).
#
#   workloads/record.sh NAME [migtrace record options...]   # NAME: sqlite, compile, redis, stress
#
# Output: $WORK/NAME.csv.gz (the whole recording) and $WORK/NAME-console.log (host-stamped).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WORK=${MIGTRACE_WORKLOAD_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/migtrace-workloads}
NAME=$1
shift
exec node "$REPO/bin/run.js" record --out "$WORK/$NAME.csv.gz" --console "$WORK/$NAME-console.log" \
  --stop-on "^WORKLOAD (DONE|UNKNOWN)" "$@" -- \
  qemu-system-x86_64 -accel tcg,thread=single -machine pc -m 2G -smp 1 -nodefaults -display none -vga none \
  -serial stdio -no-reboot -kernel "$WORK/vmlinuz" -initrd "$WORK/workloads.cpio.gz" \
  -append "console=ttyS0 loglevel=4 panic=-1 rdinit=/init wl=$NAME"
