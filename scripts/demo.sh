#!/usr/bin/env bash
# Sets up, builds and runs the demo (examples/hello on the embedded runtime).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build" -DATOLL_BUILD_TESTS=OFF -DATOLL_BUILD_BENCHMARKS=OFF
"$root/build/examples/atoll_hello"
