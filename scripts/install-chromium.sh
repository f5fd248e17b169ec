#!/usr/bin/env bash
# Installs Debian's Chromium for the browser end-to-end tests (test/browser), which Playwright drives
# through its executablePath. Playwright never downloads a browser here: playwright-core has no download
# step, and a browser fetched from outside Debian's archive would be a second, unpinned supply chain.
#
# Idempotent: when a working chromium is present, it only runs `chromium --version`.
#
# Usage: scripts/install-chromium.sh      (prints the absolute path of the browser on stdout)
# Env:   CHROMIUM_BIN=/path/to/chromium   use that browser instead and install nothing
set -euo pipefail

die() {
  echo "Chromium could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-chromium: $*" >&2
}

works() {
  "$1" --version >/dev/null 2>&1
}

if [[ -n "${CHROMIUM_BIN:-}" ]]; then
  [[ -x "${CHROMIUM_BIN}" ]] || die "CHROMIUM_BIN=${CHROMIUM_BIN} is not an executable file"
  works "${CHROMIUM_BIN}" || die "CHROMIUM_BIN=${CHROMIUM_BIN} does not run (--version failed)"
  echo "${CHROMIUM_BIN}"
  exit 0
fi

binary=/usr/bin/chromium
if [[ -x "${binary}" ]] && works "${binary}"; then
  echo "${binary}"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get is missing: install Debian's chromium package, or set CHROMIUM_BIN"
as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || die "installing packages needs root: run as root, or install chromium yourself"
  as_root=(sudo)
fi
log "installing Debian's chromium package (apt-get update, then install)"
"${as_root[@]}" apt-get update -qq >&2 || die "apt-get update failed"
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >&2 ||
  die "apt-get install chromium failed"
works "${binary}" || die "${binary} does not run after installing"
log "$("${binary}" --version 2>/dev/null)"
echo "${binary}"
