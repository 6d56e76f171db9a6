#!/usr/bin/env bash
# Installs Chromium and its WebDriver from Debian's packages for the console's browser tests
# (tests/integration/test_console_browser.py). Quick and silent when both are installed. Where they cannot
# be installed (not root, no apt-get) it says why and succeeds: those tests then skip with that reason.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# package -> a file it installs, so a check needs no dpkg query per package.
declare -A PROVIDES=(
  [chromium]=/usr/bin/chromium
  [chromium-driver]=/usr/bin/chromedriver
)
missing=()
for pkg in "${!PROVIDES[@]}"; do
  [[ -e "${PROVIDES[$pkg]}" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then exit 0; fi

if [[ $(id -u) -ne 0 ]]; then
  log "not installing ${missing[*]}: needs root (run: sudo $0); the browser tests will skip"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  log "not installing ${missing[*]}: no apt-get here; the browser tests will skip"
  exit 0
fi
log "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
