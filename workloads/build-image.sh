#!/bin/bash
# Builds the guest image of the recorded workloads (traces/README.md): Debian's kernel (the lab's,
# `migtrace lab image`) and an initramfs holding a Debian bookworm root file system made with
# debootstrap (minbase + sqlite3, redis-server, redis-tools, stress-ng, gcc, make, libc6-dev),
# trimmed of documentation, with workloads/init as /init and the workload scripts in /workloads.
# The whole root is unpacked into guest RAM at boot: the programs' files are then written by the
# guest CPU, which `migtrace record` sees (disk reads would be device DMA, which it does not).
#
#   workloads/build-image.sh            # -> $WORK/vmlinuz, $WORK/workloads.cpio.gz
#
# $WORK: $MIGTRACE_WORKLOAD_WORK, else ~/.cache/migtrace-workloads. Needs root (debootstrap) and
# apt-get for the host tools it lacks. The image is never committed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WORK=${MIGTRACE_WORKLOAD_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/migtrace-workloads}
ROOT="$WORK/rootfs"
STAGE="$WORK/stage"
PKGS=sqlite3,redis-server,redis-tools,stress-ng,gcc,make,libc6-dev
mkdir -p "$WORK"

need=()
for t in debootstrap:debootstrap cpio:cpio gzip:gzip busybox:busybox-static; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  echo "[image] apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The Debian mirror apt already uses here.
MIRROR=$(grep -hoE '^(URIs:|deb) +[a-z]+://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 | awk '{print $2}' || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

if [ ! -x "$ROOT/usr/bin/sqlite3" ] || [ ! -x "$ROOT/usr/bin/redis-server" ]; then
  echo "[image] debootstrap --variant=minbase bookworm ($PKGS) from $MIRROR"
  rm -rf "$ROOT"
  debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOT" "$MIRROR"
fi

echo "[image] staging the root file system"
rm -rf "$STAGE"
cp -a "$ROOT" "$STAGE"
rm -rf "$STAGE"/usr/share/{doc,man,info,locale,i18n,lintian,linda} "$STAGE"/var/cache/apt/* "$STAGE"/var/lib/apt/lists/* "$STAGE"/var/log/*
install -m 0755 "$HERE/init" "$STAGE/init"
install -m 0755 /bin/busybox "$STAGE/bin/busybox"
mkdir -p "$STAGE/workloads/src"
install -m 0755 "$HERE"/*.sh "$STAGE/workloads/"
rm -f "$STAGE/workloads/build-image.sh" "$STAGE/workloads/record.sh"
cp "$HERE/Makefile.compile" "$STAGE/workloads/src/Makefile"
cp "$REPO/native/record-plugin/migtrace-record.c" "$REPO/lab/guest/dirtier.c" "$REPO/test/record/tiny-guest/tiny-guest.c" "$STAGE/workloads/src/"
(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 > "$WORK/workloads.cpio.gz.tmp")
mv "$WORK/workloads.cpio.gz.tmp" "$WORK/workloads.cpio.gz"
echo "[image] $(du -sh "$STAGE" | cut -f1) root, $(du -h "$WORK/workloads.cpio.gz" | cut -f1) compressed"

# The kernel: the lab's (Debian's stock kernel, unpacked from its .deb).
node "$REPO/bin/run.js" lab image >&2
LAB=${MIGTRACE_LAB_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/migtrace-lab}
cp "$LAB/image/vmlinuz" "$WORK/vmlinuz"
echo "[image] ok: $WORK/vmlinuz $WORK/workloads.cpio.gz"
