#!/usr/bin/env bash
# Installs every test tool the project builds from the Go module proxy, one after the other, into the
# git-ignored .tools/: kustomize, manifest-check and the Envoy Gateway CRDs (install-deploy-tools.sh),
# promtool (install-promtool.sh) and the minimal OpenTelemetry Collector (install-otelcol.sh); then
# Keycloak from Maven Central (install-keycloak.sh: a download and its build step, some 30 s), which only
# the same last project needs. Each of them is idempotent: a second run builds nothing.
#
# The builds are the longest part of a fresh machine's set-up (some 5 CPU-minutes on 2 cores), and only the
# `go-tools` vitest project needs them, which runs last (vitest.config.ts). So `npm test`'s pretest starts
# this script with --background, at low priority, and goes on: the builds take the CPU that the downloads,
# the type check, the lint and the suites before that project leave idle. That project's setup
# (test/kit/go-tools-ready.ts) waits for the lock below, then reads the status file.
#
# Usage: scripts/install-go-tools.sh                 installs, in the foreground (errors on stderr)
#        scripts/install-go-tools.sh --background    starts the same at nice 19 and returns at once;
#                                                    output in .tools/go-tools.log
# Files: .tools/.go-tools.lock    held while installing
#        .tools/go-tools.status   `running`, then `ok` or `failed` (what the last run ended with)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .tools

if [[ "${1:-}" == "--background" ]]; then
  # Its own output file, never npm's: npm waits for whatever holds its pipes open.
  nohup nice -n 19 bash scripts/install-go-tools.sh > .tools/go-tools.log 2>&1 < /dev/null &
  exit 0
fi

exec 9> .tools/.go-tools.lock
flock 9
echo running > .tools/go-tools.status
trap 'echo failed > .tools/go-tools.status' ERR

bash scripts/install-deploy-tools.sh > /dev/null
bash scripts/install-promtool.sh > /dev/null
bash scripts/install-otelcol.sh > /dev/null
bash scripts/install-keycloak.sh > /dev/null

echo ok > .tools/go-tools.status
