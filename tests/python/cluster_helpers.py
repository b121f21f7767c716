"""Functions the local test cluster's Python workers import by name (conftest puts this folder on
their PYTHONPATH): what a C++ driver calls with rt.python_task."""

import atoll


def triple(x):
    return 3 * x


@atoll.remote
def decorated_square(x):
    return x * x


def fails(x):
    raise ValueError(f"python refuses {x}")
