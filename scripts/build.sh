#!/usr/bin/env bash
# Configures and builds atoll into a build directory.
#   scripts/build.sh [BUILD_DIR] [extra cmake arguments...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-"$root/build"}
shift || true
jobs=${ATOLL_JOBS:-$(nproc)}
mkdir -p "$build_dir"
log="$build_dir/configure.log"
cmake -S "$root" -B "$build_dir" -G Ninja "$@" > "$log" 2>&1 || { cat "$log"; exit 1; }
grep -E "^-- atoll:" "$log" || true
cmake --build "$build_dir" -j "$jobs"
