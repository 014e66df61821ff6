#!/usr/bin/env bash
# Install Debian's `chromium` for the report test (tests/test_report.py), if it can.
#
# Idempotent: does nothing when `chromium` is already on PATH.  Installs with apt-get
# when run as root; otherwise (or if apt-get fails) prints a warning and exits 0, and the
# browser test skips with a reason instead of failing.  The Python side (`playwright`,
# which drives this chromium; never `playwright install`) comes with `pip install -e ".[test]"`.
set -u

if command -v chromium >/dev/null 2>&1; then
    echo "install-browser: chromium already installed at $(command -v chromium)"
    exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: warning: chromium not found and cannot install it (need root and apt-get);" \
         "run 'apt-get install chromium' as root; the browser test will be skipped" >&2
    exit 0
fi

# --no-install-recommends: the browser and its libraries only (a font comes with
# fontconfig-config); the recommends (printing, notification and power daemons) are not needed.
echo "install-browser: apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "install-browser: installed $(chromium --version 2>/dev/null || echo chromium)"
else
    echo "install-browser: warning: apt-get could not install chromium; the browser test will be skipped" >&2
fi
exit 0
