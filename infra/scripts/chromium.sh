#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the dashboard's browser
# tests (tests/integration/dashboard_web.rs drives a real headless
# Chromium through ChromeDriver). Idempotent: does nothing when both are
# there. CHROMIUM_BIN / CHROMEDRIVER_BIN point the tests at other copies.
set -euo pipefail

chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
chromedriver="${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}"
if [[ -x "$chromium" && -x "$chromedriver" ]]; then
    exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "the browser tests need Chromium and ChromeDriver: install Debian's chromium and chromium-driver (or set CHROMIUM_BIN / CHROMEDRIVER_BIN) and run this again" >&2
    exit 1
fi
echo "==> installing chromium and chromium-driver (Debian) for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
