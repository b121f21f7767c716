"""Every test gets a fresh embedded runtime with 4 CPUs (tests that need other options start
their own after `atoll.shutdown()`)."""

import pytest

import atoll

# The bound for anything that should be quick; only a hang reaches it.
WAIT = 30


@pytest.fixture(autouse=True)
def runtime():
    atoll.init(num_cpus=4, infeasible_timeout=0.2)
    yield
    atoll.shutdown()
