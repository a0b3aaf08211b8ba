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
sh "$(dirname "$0")/apt-install.sh" ensure-chromium chromium || exit 3
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure-chromium: chromium installed but $CHROMIUM is still missing" >&2
  exit 3
fi
exit 0
