"""atoll from Python: a remote function, an actor and a numpy array, on the embedded runtime or,
given a head's address (token in $ATOLL_TOKEN), on a cluster's Python workers.

  scripts/python_setup.sh && .venv/bin/python examples/python/hello.py
  build/atoll up --python .venv/bin/python
  ATOLL_TOKEN=$(cat ~/.atoll/token) .venv/bin/python examples/python/hello.py $(cat ~/.atoll/head.addr)
"""

import os
import sys

import numpy as np

import atoll


@atoll.remote
def add(a, b):
    return a + b


@atoll.remote
class Counter:
    def __init__(self):
        self.n = 0

    def incr(self, by):
        self.n += by
        return self.n

    def pid(self):
        return os.getpid()


@atoll.remote(num_cpus=0.5)
def norm(x):
    return float(np.linalg.norm(x))


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else None
    atoll.init(address=address)  # the token comes from $ATOLL_TOKEN
    c = Counter.remote()
    where = "in this process" if atoll.get(c.pid.remote()) == os.getpid() else "in a worker process"
    print("actor lives", where)
    a = add.remote(1, 2)
    print("add:", atoll.get(add.remote(a, 10)))  # 13: `a` was resolved before the task ran
    print("counter:", atoll.get([c.incr.remote(5), c.incr.remote(1)]))  # [5, 6]
    big = atoll.put(np.ones(1 << 20))  # copied once into the store, read back without a copy
    print("norm:", atoll.get(norm.remote(big)))  # 1024.0
    atoll.shutdown()


if __name__ == "__main__":
    main()
