#!/bin/sh
# Make sure Debian's chromium is installed, for the headless rendering test of HTML reports
# (test/report/chromium.test.ts). Installs it with apt only when /usr/bin/chromium is absent.
# Exit codes: 0 = chromium is there (or was installed); 3 = it cannot be installed here (no apt,
# not root, or apt failed): the caller skips with the message printed on stderr.
set -u
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available" >&2
  exit 3
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
  exit 3
fi
echo "ensure-chromium: installing Debian's chromium package (apt-get)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq >&2; then
  echo "ensure-chromium: apt-get update failed" >&2
  exit 3
fi
if ! apt-get install -y -qq --no-install-recommends chromium >&2; then
  echo "ensure-chromium: apt-get install chromium failed" >&2
  exit 3
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: chromium installed but $CHROMIUM is still missing" >&2
  exit 3
fi
exit 0
