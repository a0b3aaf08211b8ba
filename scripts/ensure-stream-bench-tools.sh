#!/bin/sh
# Make sure scripts/measure-compression.ts can build its in-process benchmark
# (native/stream-bench/migtrace-stream-bench.c): a C compiler with the C library headers (gcc,
# libc6-dev) and the headers of the libraries QEMU links for multifd compression, zlib
# (zlib1g-dev) and libzstd (libzstd-dev). Installs the missing packages with apt only.
# Exit codes: 0 = all there (or installed); 3 = they cannot be installed here (no apt, not root,
# or apt failed): the caller stops with the message printed on stderr.
set -u
need=""
command -v cc >/dev/null 2>&1 || need="$need gcc"
[ -e /usr/include/stdio.h ] || need="$need libc6-dev"
[ -e /usr/include/zlib.h ] || need="$need zlib1g-dev"
[ -e /usr/include/zstd.h ] || need="$need libzstd-dev"
if [ -z "$need" ]; then
  exit 0
fi
# shellcheck disable=SC2086
exec sh "$(dirname "$0")/apt-install.sh" ensure-stream-bench-tools $need
