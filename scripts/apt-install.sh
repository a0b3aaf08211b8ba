#!/bin/sh
# The apt part of the ensure-*.sh scripts: `apt-install.sh WHO PACKAGE...` installs the packages
# with apt-get (update, then install without recommends), messages on stderr prefixed with WHO.
# Exit codes: 0 = installed; 3 = they cannot be installed here (no apt, not root, or apt failed):
# the caller (a test, .ci/run) skips or stops with the message printed.
set -u
who=$1
shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$who: missing: $*, and apt-get is not available" >&2
  exit 3
fi
if [ "$(id -u)" != "0" ]; then
  echo "$who: missing: $*; installing needs root (apt-get install $*)" >&2
  exit 3
fi
echo "$who: installing $* (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >&2; then
  echo "$who: apt-get update failed" >&2
  exit 3
fi
if ! apt-get install -y -qq --no-install-recommends "$@" >&2; then
  echo "$who: apt-get install $* failed" >&2
  exit 3
fi
exit 0
