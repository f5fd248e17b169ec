#!/usr/bin/env bash
# Installs promtool, with which the monitoring tests (test/integration/monitoring-*.test.ts) check and
# unit-test the alert rules of deploy/monitoring/ (`promtool check rules`, `promtool test rules`) and lint a
# real scrape of /metrics (`promtool check metrics`), into the git-ignored .tools/bin/, from the Go module
# proxy (no download site, no Docker).
#
# Idempotent: with promtool at the pinned version it rebuilds nothing.
#
# Usage: scripts/install-promtool.sh      (prints the path of promtool on stdout)
# Env:   GO=/path/to/go                   the Go toolchain (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# Prometheus v3.16.0: the Go module proxy serves Prometheus 3.x releases as v0.3xx.y of the module
# github.com/prometheus/prometheus (v3.16.0 is v0.316.0), as Prometheus has never had a /v3 module path.
prometheus_module_version="v0.316.0"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "promtool could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-promtool: $*" >&2
}

go="${GO:-$(command -v go || true)}"
[[ -n "${go}" ]] || go=/usr/local/go/bin/go
[[ -x "${go}" ]] || die "no Go toolchain (go on PATH, /usr/local/go/bin/go or GO=...); see https://go.dev/dl/"

bin_dir="${repo_root}/.tools/bin"
mkdir -p "${bin_dir}"

# `go version -m` names the module version a Go binary was built from (its `mod` line).
promtool="${bin_dir}/promtool"
package="github.com/prometheus/prometheus/cmd/promtool"
if ! "${go}" version -m "${promtool}" 2> /dev/null |
  grep -q "^[[:space:]]*mod[[:space:]]*github.com/prometheus/prometheus[[:space:]]*${prometheus_module_version}[[:space:]]"; then
  log "go install ${package}@${prometheus_module_version}"
  # -tags remove_all_sd: leaves out the service-discovery plugins that github.com/prometheus/prometheus/plugins
  # registers (EC2, Azure, GCE, Consul, DigitalOcean, Hetzner, OpenStack, ...), which promtool needs only to
  # read scrape configurations that use them (`promtool check config`); rule checks, rule unit tests and
  # metrics linting never do, and the build is shorter without them. (Kubernetes discovery stays: promtool's
  # main.go imports it directly.)
  # -trimpath and -ldflags='-s -w': no local paths, no symbol table or DWARF (a smaller binary).
  GOBIN="${bin_dir}" "${go}" install -trimpath -tags remove_all_sd -ldflags='-s -w' \
    "${package}@${prometheus_module_version}" ||
    die "go install ${package}@${prometheus_module_version} failed"
fi

echo "${promtool}"
