#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the dashboard's browser
# tests (tests/integration/dashboard_web.rs drives a real headless
# Chromium through ChromeDriver), with the Noto fonts for Devanagari and
# colour emoji (a bare machine has neither: Hindi and emoji would render
# as empty boxes). Idempotent: does nothing when all are there.
# CHROMIUM_BIN / CHROMEDRIVER_BIN point the tests at other copies.
set -euo pipefail

chromium="${CHROMIUM_BIN:-/usr/bin/chromium}"
chromedriver="${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}"
fonts=(/usr/share/fonts/truetype/noto/NotoSansDevanagari-Regular.ttf /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf)
if [[ -x "$chromium" && -x "$chromedriver" && -f "${fonts[0]}" && -f "${fonts[1]}" ]]; then
    exit 0
fi
# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
apt_install "the browser tests need Chromium, ChromeDriver and fonts for Hindi and emoji (or set CHROMIUM_BIN / CHROMEDRIVER_BIN)" \
    chromium chromium-driver fonts-noto-core fonts-noto-color-emoji
