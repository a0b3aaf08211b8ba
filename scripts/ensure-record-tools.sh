#!/bin/sh
# Make sure what `migtrace record` and its end-to-end test need is installed: QEMU for x86 guests
# (Debian: qemu-system-x86, which has TCG plugin support) and a C compiler with the C library
# headers (gcc, libc6-dev) to build the recording plugin and the tiny test guest.
# Installs the missing packages with apt only. Exit codes: 0 = all there (or installed); 3 = they
# cannot be installed here (no apt, not root, or apt failed): the tests skip with a message.
set -u
need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
command -v cc >/dev/null 2>&1 || need="$need gcc"
[ -e /usr/include/stdio.h ] || need="$need libc6-dev"
if [ -z "$need" ]; then
  exit 0
fi
# shellcheck disable=SC2086
exec sh "$(dirname "$0")/apt-install.sh" ensure-record-tools $need
