#!/usr/bin/env bash
# Installs what atoll needs to build and test, from Debian's packages. Idempotent: installs only
# what is missing, so running it again costs nothing. Extra package names may be given as
# arguments (scripts/fuzz.sh adds clang's libFuzzer).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libmsgpack-cxx-dev libgtest-dev libgmock-dev libbenchmark-dev
  capnproto libcapnp-dev libasio-dev libssl-dev libcli11-dev nlohmann-json3-dev
  libucx-dev ucx-utils
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi
