#!/usr/bin/env bash
# Installs what the deploy/ manifest tests (test/integration/deploy-*.test.ts) check the manifests with, into
# the git-ignored .tools/, from the Go module proxy (no cluster, no Docker, no download site):
#
#   .tools/bin/kustomize              kustomize, `go install`ed at a pinned version: renders the bases
#   .tools/bin/manifest-check         scripts/manifest-check (go.mod/go.sum pin k8s.io/api, istio.io/api and the
#                                     Prometheus Operator's API module): strict decoding of Kubernetes, Istio and
#                                     monitoring.coreos.com objects, as the API server does
#   .tools/envoy-gateway-crds/        the CustomResourceDefinitions of Envoy Gateway (SecurityPolicy) and of
#                                     the Gateway API standard channel (Gateway, HTTPRoute) that Envoy
#                                     Gateway ships, from the github.com/envoyproxy/gateway module
#
# Idempotent: with everything at the pinned versions it rebuilds nothing (manifest-check is rebuilt from the
# Go build cache, in about a second, so that it always matches its sources).
#
# Usage: scripts/install-deploy-tools.sh      (prints the three paths above on stdout)
# Env:   GO=/path/to/go                       the Go toolchain (default: go on PATH, else /usr/local/go/bin/go)
set -euo pipefail

# kustomize v5.8.1: the newest release whose go.mod the Go toolchain here (1.26) builds; v5.8.3 needs Go 1.27.
kustomize_version="v5.8.1"
# Envoy Gateway v1.9.1 (Gateway API v1.6.1 CRDs): the newest release the Go module proxy lists.
envoy_gateway_version="v1.9.1"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "deploy tools could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-deploy-tools: $*" >&2
}

go="${GO:-$(command -v go || true)}"
[[ -n "${go}" ]] || go=/usr/local/go/bin/go
[[ -x "${go}" ]] || die "no Go toolchain (go on PATH, /usr/local/go/bin/go or GO=...); see https://go.dev/dl/"

bin_dir="${repo_root}/.tools/bin"
mkdir -p "${bin_dir}"

# `go version -m` names the module version a Go binary was built from (its `mod` line).
kustomize="${bin_dir}/kustomize"
if ! "${go}" version -m "${kustomize}" 2> /dev/null |
  grep -q "^[[:space:]]*mod[[:space:]]*sigs.k8s.io/kustomize/kustomize/v5[[:space:]]*${kustomize_version}[[:space:]]"; then
  log "go install sigs.k8s.io/kustomize/kustomize/v5@${kustomize_version}"
  GOBIN="${bin_dir}" "${go}" install "sigs.k8s.io/kustomize/kustomize/v5@${kustomize_version}" ||
    die "go install sigs.k8s.io/kustomize/kustomize/v5@${kustomize_version} failed"
fi

(cd scripts/manifest-check && "${go}" build -trimpath -o "${bin_dir}/manifest-check" .) ||
  die "go build scripts/manifest-check failed"

crd_dir="${repo_root}/.tools/envoy-gateway-crds"
if [[ "$(cat "${crd_dir}/VERSION" 2> /dev/null || true)" != "${envoy_gateway_version}" ]]; then
  log "go mod download github.com/envoyproxy/gateway@${envoy_gateway_version} (about 15 MB)"
  module_dir="$("${go}" mod download -json "github.com/envoyproxy/gateway@${envoy_gateway_version}" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -d "${module_dir}" ]] || die "go mod download gave no module folder for github.com/envoyproxy/gateway@${envoy_gateway_version}"
  rm -rf "${crd_dir}"
  mkdir -p "${crd_dir}"
  cp "${module_dir}/charts/gateway-helm/charts/crds/crds/generated/gateway.envoyproxy.io_securitypolicies.yaml" \
    "${crd_dir}/securitypolicies.yaml"
  # The Helm template wraps the plain CRDs in one `{{- if ... }}` ... `{{- end }}`: drop those two lines.
  grep -v '^{{' "${module_dir}/charts/gateway-crds-helm/templates/standard-gatewayapi-crds.yaml" \
    > "${crd_dir}/gateway-api-standard.yaml"
  chmod u+w "${crd_dir}"/*.yaml
  echo "${envoy_gateway_version}" > "${crd_dir}/VERSION"
fi

echo "${kustomize}"
echo "${bin_dir}/manifest-check"
echo "${crd_dir}"
