#!/usr/bin/env bash
# atoll beside Ray and Dask, from a fresh machine in one command: sets up and builds what the
# comparison needs (apt packages, the C++ build with its benchmarks, atoll's Python package), then
# runs benchmarks/peer_benchmarks.py, which installs Ray and Dask from PyPI into .venv-peers and
# prints the table, writes build/peer_benchmarks.json and regenerates docs/benchmarks.md's
# comparison with its chart. Arguments go to peer_benchmarks.py:
#   benchmarks/peers.sh            # the full run (under 25 minutes on 2 cores)
#   benchmarks/peers.sh --quick    # under 3 minutes once built
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build" > /dev/null
"$root/scripts/python_setup.sh" > /dev/null
exec "$root/.venv/bin/python" "$root/benchmarks/peer_benchmarks.py" "$@"
