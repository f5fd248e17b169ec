#!/usr/bin/env bash
# Builds the OpenTelemetry Collector the tracing tests send to (test/kit/otel-collector.ts) into the
# git-ignored .tools/bin/otelcol, from the Go module proxy: scripts/otelcol is a minimal collector (the OTLP
# receiver; the debug and file exporters) whose go.mod and go.sum pin every module, so the build needs no
# OpenTelemetry Collector Builder and resolves nothing at install time (no `go mod tidy`).
#
# Idempotent: when the binary was built from the sources as they are now (a SHA-256 of go.mod, go.sum and
# main.go kept beside it), nothing is rebuilt. A first build downloads about 100 modules and takes about two
# minutes on 2 cores; the binary is about 26 MB.
#
# Usage: scripts/install-otelcol.sh      (prints the absolute path of the collector on stdout)
# Env:   GO=/path/to/go                   the Go toolchain, for a build (default: go on PATH, else
#                                         /usr/local/go/bin/go)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "the OpenTelemetry Collector could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-otelcol: $*" >&2
}

bin_dir="${repo_root}/.tools/bin"
binary="${bin_dir}/otelcol"
stamp="${repo_root}/.tools/otelcol.sources.sha256"
mkdir -p "${bin_dir}"

# What the binary is built from and how: a change of either rebuilds it.
build_flags=(-mod=readonly -buildvcs=false -trimpath -gcflags='all=-N -l' -ldflags='-s -w')
sources="$(cd scripts/otelcol && sha256sum go.mod go.sum main.go && echo "go build ${build_flags[*]}")"
if [[ ! -x "${binary}" || "$(cat "${stamp}" 2> /dev/null || true)" != "${sources}" ]]; then
  # Go is needed only to build: a collector built from these very sources is used as it is.
  go="${GO:-$(command -v go || true)}"
  [[ -n "${go}" ]] || go=/usr/local/go/bin/go
  [[ -x "${go}" ]] || die "no Go toolchain (go on PATH, /usr/local/go/bin/go or GO=...); see https://go.dev/dl/"
  log "go build scripts/otelcol (the modules go.sum pins; a first build takes about two minutes)"
  # -mod=readonly: a go.mod that needs changing fails the build instead of being changed here;
  # -buildvcs=false: the binary does not depend on the state of this repository's git checkout;
  # -gcflags='all=-N -l': no optimisation nor inlining: the collector handles a few spans per test, and
  # compiling it is what costs (about a third less CPU, as for promtool).
  (cd scripts/otelcol &&
    "${go}" build "${build_flags[@]}" -o "${binary}" .) ||
    die "go build scripts/otelcol failed"
  echo "${sources}" > "${stamp}"
fi

"${binary}" --version > /dev/null || die "${binary} --version failed"
echo "${binary}"
