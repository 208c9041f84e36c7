#!/usr/bin/env bash
# Makes Debian's Chromium and ChromeDriver ready for the console's browser tests
# (tests/e2e/test_console_browser.py): installs the packages chromium and chromium-driver when
# they are missing (as root) and prints the two paths. Safe to run again. Exits 1 when it
# cannot (no root to install): the browser tests then skip, or fail under CI=true.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || exit 1
  {
    timeout 900 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 1800 apt-get install -y -qq chromium chromium-driver
  } >&2
fi
timeout 60 chromium --version >&2
timeout 60 chromedriver --version >&2
echo "$(command -v chromium) $(command -v chromedriver)"
