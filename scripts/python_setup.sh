#!/usr/bin/env bash
# Installs atoll's Python package into a virtual environment under the repository (.venv/, ignored
# by git) with what its tests and benchmarks need: pybind11 and scikit-build-core to build it,
# cloudpickle to run it, numpy and pytest. Idempotent: a second run only rebuilds what changed
# (the CMake build folder persists under build/python/).
#   scripts/python_setup.sh          # then: .venv/bin/python -c "import atoll"
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" python3-dev python3-venv

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "python_setup: creating $venv"
  "${ATOLL_PYTHON:-python3}" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# Build requirements are installed up front so the package builds without build isolation: no
# fresh download per install, and the persistent build folder stays valid.
"${pip[@]}" install "scikit-build-core>=0.10" "pybind11>=2.12" "cloudpickle>=2.2" "numpy>=1.22" \
  "pytest>=7"
CMAKE_BUILD_PARALLEL_LEVEL=${ATOLL_JOBS:-$(nproc)} "${pip[@]}" install --no-build-isolation "$root"
echo "python_setup: atoll $("$venv/bin/python" -c 'import atoll; print(atoll.__version__)') in $venv"
