#!/usr/bin/env bash
# Makes sure h2load (HTTP load generator from nghttp2) is available for `npm run bench`.
#
# h2load comes from Debian's nghttp2-client package: installed with apt-get when it is not on PATH (as root,
# or with sudo). Idempotent: when h2load is there it only prints its path.
#
# Usage: scripts/install-h2load.sh   (prints the absolute path of h2load on stdout)
# Env:   H2LOAD_BIN=/path/to/h2load  use that binary instead and install nothing
set -euo pipefail

die() {
  echo "h2load could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-h2load: $*" >&2
}

if [[ -n "${H2LOAD_BIN:-}" ]]; then
  [[ -f "${H2LOAD_BIN}" && -x "${H2LOAD_BIN}" ]] || die "H2LOAD_BIN=${H2LOAD_BIN} is not an executable file"
  echo "${H2LOAD_BIN}"
  exit 0
fi

if found="$(command -v h2load)"; then
  echo "${found}"
  exit 0
fi

command -v apt-get > /dev/null || die "h2load is not on PATH and there is no apt-get: install nghttp2 (h2load) yourself"
as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo > /dev/null || die "installing packages needs root: run as root, or install nghttp2-client yourself"
  as_root=(sudo)
fi
log "installing Debian's nghttp2-client package (apt-get update, then install)"
"${as_root[@]}" apt-get update -qq >&2 || die "apt-get update failed"
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends nghttp2-client >&2 ||
  die "apt-get install nghttp2-client failed"

found="$(command -v h2load)" || die "nghttp2-client is installed but h2load is not on PATH"
log "installed ${found} ($("${found}" --version 2>&1 | head -n 1))"
echo "${found}"
