#!/usr/bin/env bash
# Installs the pinned ghz (gRPC load generator, https://ghz.sh) into .tools/bin/ghz for `npm run bench`.
#
# Built from source with `go install` at an exact version, so every machine measures with the same load
# generator; the Go toolchain fetches it through the Go module proxy. Idempotent: with the pinned version
# installed it only runs `ghz --version` and exits.
#
# Usage: scripts/install-ghz.sh      (prints the absolute path of the ghz binary on stdout)
# Env:   GHZ_BIN=/path/to/ghz        use that binary instead and install nothing
#        GO=/path/to/go              the Go toolchain (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# v0.120.0 (2024-05-30), the latest release.
version="v0.120.0"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "ghz could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-ghz: $*" >&2
}

has_version() {
  local out
  out="$("$1" --version 2>&1)" || return 1
  [[ "${out}" == "${version}" ]]
}

if [[ -n "${GHZ_BIN:-}" ]]; then
  [[ -f "${GHZ_BIN}" && -x "${GHZ_BIN}" ]] || die "GHZ_BIN=${GHZ_BIN} is not an executable file"
  echo "${GHZ_BIN}"
  exit 0
fi

bin_dir="${repo_root}/.tools/bin"
if [[ -x "${bin_dir}/ghz" ]] && has_version "${bin_dir}/ghz"; then
  echo "${bin_dir}/ghz"
  exit 0
fi

go="${GO:-$(command -v go || true)}"
[[ -n "${go}" ]] || go=/usr/local/go/bin/go
[[ -x "${go}" ]] || die "no Go toolchain (go on PATH, /usr/local/go/bin/go or GO=...); see https://go.dev/dl/"

log "go install github.com/bojand/ghz/cmd/ghz@${version} ($("${go}" version))"
mkdir -p "${bin_dir}"
# ghz's release builds stamp the version with -ldflags (goreleaser); do the same so `ghz --version` says it.
GOBIN="${bin_dir}" "${go}" install -ldflags="-X main.version=${version}" "github.com/bojand/ghz/cmd/ghz@${version}" ||
  die "go install github.com/bojand/ghz/cmd/ghz@${version} failed"

has_version "${bin_dir}/ghz" ||
  die "${bin_dir}/ghz does not report ${version}: $("${bin_dir}/ghz" --version 2>&1 | head -n 1 || true)"
log "installed ${bin_dir}/ghz ${version}"
echo "${bin_dir}/ghz"
