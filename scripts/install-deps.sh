#!/usr/bin/env bash
# Installs the Debian 12 packages that sqlbak's build and its test suite need.
# Used by both README commands and by .ci/run; safe to run again.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libsqlite3-dev libzstd-dev zlib1g-dev libssl-dev
  libboost-dev libboost-system-dev libsystemd-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev
  catch2
  # peers the tests and benchmarks run against
  sqlite3 zstd restic python3 faketime systemd procps util-linux strace
  python3-aiosmtpd awscli chromium openssl
)

if [ "$(id -u)" -ne 0 ]; then
  sudo=sudo
else
  sudo=
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# s3rver (an S3-compatible server) comes from npm, pinned by tests/peers/package-lock.json
# and installed inside the source tree. Debian's nodejs and npm when the machine has none.
if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends nodejs npm
fi
peers="$(cd "$(dirname "$0")/../tests/peers" && pwd)"
if [ ! -x "$peers/node_modules/.bin/s3rver" ]; then
  (cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
fi
