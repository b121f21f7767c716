#!/usr/bin/env bash
# object_transfer_gigabytes: builds atoll_object_transfer if needed and runs it. A 1 GiB object
# goes from this process to a receiver process over loopback through the data plane (TCP and, when
# built with it, UCX; one stream and four), beside a single plain TCP stream and ucx_perftest's
# tag bandwidth over UCX's tcp transport, measured in the same run.
#   benchmarks/object_transfer.sh                        # build/, 1 GiB, median of 5
#   benchmarks/object_transfer.sh --size 268435456 --repeat 9 --streams 2
#   ATOLL_BUILD_DIR=build-rel benchmarks/object_transfer.sh
# Options: --size BYTES, --repeat N, --streams N, --backends tcp,ucx, --ucx-tls TLS,
# --no-perftest. Needs ucx-utils for the ucx_perftest row (scripts/setup.sh installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATOLL_BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  "$root/scripts/build.sh" "$build" > /dev/null
fi
cmake --build "$build" --target atoll_object_transfer -j "${ATOLL_JOBS:-$(nproc)}" > /dev/null
exec "$build/benchmarks/atoll_object_transfer" "$@"
