#!/usr/bin/env bash
# Installs a pinned Keycloak server distribution from Maven Central into .tools/keycloak, for the suite
# that verifies tokens another party's identity provider issued (test/kit/keycloak.ts,
# test/e2e/keycloak-through-envoy.test.ts). Keycloak runs on the machine's Java 17.
#
# The tarball is checked against the SHA-256 pinned here (not the .sha1 beside it on the same server), then
# unpacked, and Keycloak's build step is run once (`kc.sh build`: the dev-file database, DPoP), so that the
# tests start it with `start --optimized`, some 20 s sooner. Idempotent: a finished install (its marker
# file names the version) is left alone.
#
# Usage: scripts/install-keycloak.sh      (prints the Keycloak home folder on stdout)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

version=26.7.3
sha256=77657f30b7e90d70f727712ce1c967f430fd6a5e9f458d32d8c6df0635345f47
url="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/${version}/keycloak-quarkus-dist-${version}.tar.gz"
tools="${repo_root}/.tools/keycloak"
home="${tools}/keycloak-${version}"
marker="${tools}/installed-${version}"

die() {
  echo "Keycloak could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR
log() {
  echo "install-keycloak: $*" >&2
}

if [[ -f "${marker}" && -x "${home}/bin/kc.sh" ]]; then
  echo "${home}"
  exit 0
fi
command -v java > /dev/null || die "java is not on PATH (Keycloak ${version} needs Java 17 or later)"

rm -rf "${tools}"
mkdir -p "${tools}"
tarball="${tools}/keycloak-${version}.tar.gz"
log "downloading Keycloak ${version} from Maven Central"
curl --fail --silent --show-error --location --retry 2 --max-time 300 -o "${tarball}" "${url}"
echo "${sha256}  ${tarball}" | sha256sum --check --quiet - || die "${tarball}: SHA-256 is not the pinned one"
tar -xzf "${tarball}" -C "${tools}"
rm -f "${tarball}"

# Build-time options (Keycloak refuses to change them at `start --optimized`): a database in files under
# data/ (no server to run), and DPoP (RFC 9449) for the bank's bound tokens.
log "building Keycloak (kc.sh build)"
"${home}/bin/kc.sh" build --db=dev-file --features=dpop > "${tools}/build.log" 2>&1 \
  || die "kc.sh build failed: $(tail -20 "${tools}/build.log")"
touch "${marker}"
echo "${home}"
