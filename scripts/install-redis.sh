#!/usr/bin/env bash
# Installs Debian's Redis server into .tools/redis for the tests of the shared DPoP replay store
# (test/kit/redis-server.ts starts, kills, pauses and restarts real redis-server processes).
#
# Nothing is installed system-wide: the .deb files are fetched with `apt-get download` and unpacked with
# `dpkg -x` into .tools/redis/root, so no service is started, no redis user is created and the machine's
# package state is left alone. Debian's archive is the source for the same reason as for Chromium: no second,
# unpinned supply chain. Wrappers in .tools/redis/bin point the dynamic loader at the unpacked libraries.
# Idempotent: when the wrapper runs, it only runs `redis-server --version`.
#
# Usage: scripts/install-redis.sh      (prints the absolute path of the redis-server wrapper on stdout)
# Env:   REDIS_SERVER_BIN=/path/to/redis-server   use that server instead and install nothing
set -euo pipefail

# Work from the repo root so every path below is the same whoever calls the script and from where.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root="$(pwd -P)"

die() {
  echo "Redis could not be installed: $*" >&2
  exit 1
}
trap 'die "command failed (line ${LINENO}): ${BASH_COMMAND}"' ERR

log() {
  echo "install-redis: $*" >&2
}

# The replay store relies on Redis 7 (SET ... NX PX with GET, ACLs, TLS); an older server must not pass.
minimum_major=7
packages=(redis-server redis-tools liblzf1 libjemalloc2)

# `redis-server --version` prints e.g. "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 ...".
major_version() {
  local out
  out="$("$1" --version 2>&1)" || return 1
  [[ "${out}" =~ v=([0-9]+)\. ]] || return 1
  echo "${BASH_REMATCH[1]}"
}

works() {
  local major
  major="$(major_version "$1")" || return 1
  ((major >= minimum_major))
}

if [[ -n "${REDIS_SERVER_BIN:-}" ]]; then
  # The tests prefer REDIS_SERVER_BIN over .tools/redis, so installing into .tools would not help: fail instead.
  [[ -f "${REDIS_SERVER_BIN}" && -x "${REDIS_SERVER_BIN}" ]] ||
    die "REDIS_SERVER_BIN=${REDIS_SERVER_BIN} is not an executable file"
  works "${REDIS_SERVER_BIN}" ||
    die "REDIS_SERVER_BIN=${REDIS_SERVER_BIN} is not Redis ${minimum_major} or later: $("${REDIS_SERVER_BIN}" --version 2>&1 | head -n 1 || true)"
  echo "${REDIS_SERVER_BIN}"
  exit 0
fi

tools=".tools/redis"
root="${tools}/root"
bin_dir="${tools}/bin"
server="${bin_dir}/redis-server"

if [[ -x "${server}" ]] && works "${server}"; then
  echo "${repo_root}/${server}"
  exit 0
fi

command -v apt-get > /dev/null || die "apt-get is missing: install Redis ${minimum_major}+ yourself and set REDIS_SERVER_BIN"
command -v dpkg > /dev/null || die "dpkg is missing: install Redis ${minimum_major}+ yourself and set REDIS_SERVER_BIN"

downloads="$(mktemp -d)"
trap 'rm -rf "${downloads}"' EXIT
# apt-get download fetches as the unprivileged _apt user when run as root; let it write into the folder, or
# it warns and falls back to fetching unsandboxed.
if [[ "$(id -u)" -eq 0 ]] && id _apt > /dev/null 2>&1; then
  chown _apt "${downloads}"
fi

download() {
  (cd "${downloads}" && apt-get download -qq "${packages[@]}") >&2
}

log "downloading ${packages[*]} from Debian's archive (about 1.5 MB)"
if ! download; then
  # A fresh machine (a CI image) has no package lists yet: fetch them once, then try again.
  as_root=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo > /dev/null ||
      die "apt-get download failed and apt-get update needs root: run as root, or run apt-get update first"
    as_root=(sudo)
  fi
  log "apt-get download failed; running apt-get update and trying again"
  "${as_root[@]}" apt-get update -qq >&2 || die "apt-get update failed"
  download || die "apt-get download ${packages[*]} failed"
fi

# Unpack into a fresh folder and swap it in, so an interrupted run never leaves a half-unpacked tree in use.
rm -rf "${root}.tmp"
mkdir -p "${root}.tmp"
for deb in "${downloads}"/*.deb; do
  dpkg -x "${deb}" "${root}.tmp"
done
rm -rf "${root}"
mv "${root}.tmp" "${root}"

# Debian ships one binary, usr/bin/redis-check-rdb, with redis-server a symlink to it: Redis picks its mode
# from argv[0], so the wrapper must exec the symlink, never the file it points at.
[[ -x "${root}/usr/bin/redis-server" ]] || die "${root}/usr/bin/redis-server is missing after unpacking"
[[ -x "${root}/usr/bin/redis-cli" ]] || die "${root}/usr/bin/redis-cli is missing after unpacking"

# The folder liblzf and libjemalloc are unpacked into: Debian's multiarch triplet for this machine.
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2> /dev/null || gcc -print-multiarch 2> /dev/null || true)"
if [[ -z "${multiarch}" || ! -d "${root}/usr/lib/${multiarch}" ]]; then
  found="$(find "${root}/usr/lib" -name 'libjemalloc.so.*' -print -quit)"
  [[ -n "${found}" ]] || die "libjemalloc was not found under ${root}/usr/lib after unpacking"
  multiarch="$(basename "$(dirname "${found}")")"
fi

# The wrappers find the unpacked tree relative to themselves, so the checkout keeps working if it is moved.
write_wrapper() {
  local name="$1"
  cat > "${bin_dir}/${name}.tmp" << EOF
#!/bin/sh
# Written by scripts/install-redis.sh: runs Debian's ${name} unpacked in ../root with its own libraries.
root="\$(CDPATH= cd -- "\$(dirname -- "\$0")/../root" && pwd -P)"
LD_LIBRARY_PATH="\${root}/usr/lib/${multiarch}\${LD_LIBRARY_PATH:+:\${LD_LIBRARY_PATH}}"
export LD_LIBRARY_PATH
exec "\${root}/usr/bin/${name}" "\$@"
EOF
  chmod +x "${bin_dir}/${name}.tmp"
  mv -f "${bin_dir}/${name}.tmp" "${bin_dir}/${name}"
}

mkdir -p "${bin_dir}"
write_wrapper redis-server
write_wrapper redis-cli

# libssl3, libsystemd0 and libatomic1 come from the system, as on any Debian machine: name them if missing.
if ! works "${server}"; then
  die "${server} does not run or is older than Redis ${minimum_major}: $("${server}" --version 2>&1 | head -n 3 || true)"
fi
"${bin_dir}/redis-cli" --version > /dev/null 2>&1 ||
  die "${bin_dir}/redis-cli does not run: $("${bin_dir}/redis-cli" --version 2>&1 | head -n 3 || true)"

log "$("${server}" --version 2>&1)"
echo "${repo_root}/${server}"
