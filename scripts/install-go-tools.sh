#!/usr/bin/env bash
# Installs every test tool the project builds from the Go module proxy, one after the other, into the
# git-ignored .tools/: kustomize, manifest-check and the Envoy Gateway CRDs (install-deploy-tools.sh),
# promtool (install-promtool.sh) and the minimal OpenTelemetry Collector (install-otelcol.sh).
#
# One at a time, under a lock: .ci/run starts this in the background at once, so that the Go builds (the
# longest part of a fresh machine's set-up, some 3 CPU-minutes) overlap `npm ci`, the downloads of Envoy and
# Chromium, the type check and the lint; `npm test` runs it again in the foreground before vitest, which then
# waits for the background run to end and finds everything installed (each script is idempotent: a second
# run builds nothing).
#
# Usage: scripts/install-go-tools.sh      (prints nothing on success; each script's errors on stderr)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

mkdir -p .tools
exec 9> .tools/.go-tools.lock
flock 9

bash scripts/install-deploy-tools.sh > /dev/null
bash scripts/install-promtool.sh > /dev/null
bash scripts/install-otelcol.sh > /dev/null
