#!/usr/bin/env bash
# Sets up, builds and runs the demo: examples/hello on the embedded runtime, the same from Python
# (examples/python/hello.py), then a local cluster of two islands (a real head and node agent
# processes on loopback) running examples/cluster, whose tasks execute in the nodes' worker
# processes, and hello.py again as the cluster's Python driver; then the cluster's status, and its
# removal.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build" -DATOLL_BUILD_TESTS=OFF -DATOLL_BUILD_BENCHMARKS=OFF

echo "== examples/hello (embedded runtime)"
"$root/build/examples/atoll_hello"

echo
echo "== examples/python/hello.py (the Python package on the embedded runtime)"
"$root/scripts/python_setup.sh"
"$root/.venv/bin/python" "$root/examples/python/hello.py"

echo
echo "== a local cluster: 2 islands x 2 nodes, running examples/cluster"
export ATOLL_STATE_DIR
ATOLL_STATE_DIR=$(mktemp -d)
trap '"$root/build/atoll" down > /dev/null 2>&1 || true; rm -rf "$ATOLL_STATE_DIR"' EXIT
"$root/build/atoll" up --islands 2 --nodes-per-island 2 --gpus-per-node 1 --gpu-model H100 \
  --cpus 1 --python "$root/.venv/bin/python"
ATOLL_TOKEN=$(cat "$ATOLL_STATE_DIR/token") \
  "$root/build/examples/atoll_cluster_demo" "$(cat "$ATOLL_STATE_DIR/head.addr")"
echo
echo "== examples/python/hello.py on the same cluster (Python workers on the nodes)"
ATOLL_TOKEN=$(cat "$ATOLL_STATE_DIR/token") \
  "$root/.venv/bin/python" "$root/examples/python/hello.py" "$(cat "$ATOLL_STATE_DIR/head.addr")"
"$root/build/atoll" status
"$root/build/atoll" down
