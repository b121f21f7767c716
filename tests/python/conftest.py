"""Every test gets a fresh embedded runtime with 4 CPUs (tests that need other options start
their own after `atoll.shutdown()`)."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

import atoll

# The bound for anything that should be quick; only a hang reaches it.
WAIT = 30

# What the C++ build makes (scripts/test.sh builds it before running pytest): the CLI and the
# C++ job module the cluster tests use (tests/cluster/job_module.cpp).
ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = os.environ.get("ATOLL_CLI", str(ROOT / "build" / "atoll"))
JOB = os.environ.get("ATOLL_TEST_JOB", str(ROOT / "build" / "libatoll_test_job.so"))


def fnv1a(data: bytes) -> int:
    """The job module's digest (64-bit FNV-1a)."""
    h = 1469598103934665603
    for c in data:
        h = ((h ^ c) * 1099511628211) % (1 << 64)
    return h


@pytest.fixture(autouse=True)
def runtime():
    atoll.init(num_cpus=4, infeasible_timeout=0.2)
    yield
    atoll.shutdown()


@pytest.fixture(scope="session")
def cluster():
    """A local cluster of real processes (`atoll up`: a head and two nodes in two islands, whose
    Python workers run this interpreter), shared by the cluster test modules: (address, token)."""
    assert os.path.exists(CLI) and os.path.exists(JOB), "build the C++ project first"
    state = tempfile.mkdtemp(prefix="atoll-py-cluster-")
    # The nodes' Python workers import cluster_helpers (C++ calls Python by import path).
    path = os.pathsep.join(filter(None, [str(ROOT / "tests" / "python"),
                                         os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, ATOLL_STATE_DIR=state, PYTHONPATH=path)
    try:
        subprocess.run(
            [CLI, "up", "--islands", "2", "--nodes-per-island", "1", "--cpus", "2",
             "--python", sys.executable],
            env=env, check=True, stdout=subprocess.DEVNULL, timeout=120,
        )
        address = pathlib.Path(state, "head.addr").read_text().strip()
        token = pathlib.Path(state, "token").read_text().strip()
        yield address, token
    finally:
        subprocess.run([CLI, "down"], env=env, stdout=subprocess.DEVNULL, timeout=120)
