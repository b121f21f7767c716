#!/usr/bin/env bash
# Sets up, builds and runs every test: the GoogleTest suite through ctest, the example, the Python
# package's pytest suite, and short runs of the benchmark suites (to prove they work; figures are
# not checked).
#   scripts/test.sh            # the normal build
#   scripts/test.sh --sanitize # also ASan+UBSan and TSan builds (what CI runs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"

run_suite() {
  local build_dir=$1
  shift
  "$root/scripts/build.sh" "$build_dir" "$@"
  ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" --timeout 300
  "$build_dir/examples/atoll_hello" > /dev/null
  # The cluster demo against a local cluster of real processes, as the demo command runs it.
  local state
  state=$(mktemp -d)
  ATOLL_STATE_DIR=$state "$build_dir/atoll" up --islands 2 --nodes-per-island 1 --cpus 1 > /dev/null
  ATOLL_STATE_DIR=$state ATOLL_TOKEN=$(cat "$state/token") \
    "$build_dir/examples/atoll_cluster_demo" "$(cat "$state/head.addr")" > /dev/null \
    || { ATOLL_STATE_DIR=$state "$build_dir/atoll" down; exit 1; }
  ATOLL_STATE_DIR=$state "$build_dir/atoll" down > /dev/null
  rm -rf "$state"
}

run_suite "$root/build"
for suite in atoll_microbenchmarks atoll_cluster_benchmarks; do
  "$root/build/benchmarks/$suite" --benchmark_min_time=0.01 --benchmark_format=console \
    > "$root/build/$suite-smoke.txt"
  echo "test: $suite smoke run ok ($(grep -c items_per_second "$root/build/$suite-smoke.txt")" \
    "benchmarks)"
done
# The Python package (built by pip against the normal, non-sanitized sources), its tests, and a
# short run of its benchmarks.
"$root/scripts/python_setup.sh"
"$root/.venv/bin/python" -m pytest -q "$root/tests/python"
"$root/.venv/bin/python" "$root/benchmarks/python_microbenchmarks.py" --quick \
  > "$root/build/python_microbenchmarks-smoke.txt"
"$root/.venv/bin/python" "$root/benchmarks/python_microbenchmarks.py" --quick --cluster \
  >> "$root/build/python_microbenchmarks-smoke.txt"
echo "test: python_microbenchmarks smoke run ok ($(grep -c 'per second' \
  "$root/build/python_microbenchmarks-smoke.txt") benchmarks)"
# The transfer benchmark on a small object, through the data plane and between two node agents of
# a local cluster (figures are not checked; each path must have run).
"$root/build/benchmarks/atoll_object_transfer" --size 67108864 --repeat 1 --no-perftest \
  > "$root/build/object_transfer-smoke.txt"
grep -q 'node agent to node agent' "$root/build/object_transfer-smoke.txt"
echo "test: atoll_object_transfer smoke run ok ($(grep -c 'GB/s' \
  "$root/build/object_transfer-smoke.txt") rows)"

if [ "${1:-}" = "--sanitize" ]; then
  run_suite "$root/build-asan" -DATOLL_SANITIZE=address,undefined -DATOLL_BUILD_BENCHMARKS=OFF
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    run_suite "$root/build-tsan" -DATOLL_SANITIZE=thread -DATOLL_BUILD_BENCHMARKS=OFF
fi
