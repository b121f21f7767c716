#!/usr/bin/env python3
"""atoll's Python API microbenchmarks, named after Ray's (python/ray/_private/ray_perf.py).

Each metric runs its operation repeatedly for --duration seconds, several rounds, and prints the
rate of each round and their median, Ray's way ("per second mean +- stdev"). The embedded runtime
by default; with --cluster, a local cluster of real processes (`atoll up`: a head and one node with
this machine's CPUs, whose Python workers run this interpreter) that this process drives.

  .venv/bin/python benchmarks/python_microbenchmarks.py               # full run (~1 minute)
  .venv/bin/python benchmarks/python_microbenchmarks.py --quick       # a smoke run (seconds)
  .venv/bin/python benchmarks/python_microbenchmarks.py --cluster     # on a local cluster
  .venv/bin/python benchmarks/python_microbenchmarks.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Callable, Dict, List

import numpy as np

import atoll

# The peer comparison's local cluster and timing loop (this script's folder is on sys.path).
from peer_workloads import atoll_cluster as local_cluster
from peer_workloads import rates as measure


@atoll.remote
def small_value():
    return b"ok"


@atoll.remote
class Actor:
    def small_value(self):
        return b"ok"

    def small_value_batch(self, n):
        return n


@atoll.remote
class Client:
    def __init__(self, server):
        self.server = server

    def small_value_batch(self, n):
        return len(atoll.get([self.server.small_value.remote() for _ in range(n)]))


def timeit(name: str, fn: Callable[[], None], multiplier: float, duration: float, rounds: int,
           results: Dict[str, dict]) -> None:
    rates: List[float] = measure(fn, multiplier, duration, rounds, budget=float("inf"))
    median = statistics.median(rates)
    spread = statistics.stdev(rates) if len(rates) > 1 else 0.0
    print(f"{name} per second {median:,.2f} +- {spread:,.2f}  (rounds: "
          f"{', '.join(f'{r:,.0f}' for r in rates)})", flush=True)
    results[name] = {"per_second": median, "stdev": spread, "rounds": rates}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke run: short rounds")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--cluster", action="store_true",
                        help="drive a local cluster (atoll up) instead of the embedded runtime")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds = 0.05, 1
    cpus = os.cpu_count() or 2
    if not args.cluster:
        atoll.init()
        return run(args, cpus, "embedded")
    with local_cluster(cpus) as (address, token):
        atoll.init(address=address, token=token)
        return run(args, cpus, "local cluster (1 node)")


def run(args: argparse.Namespace, cpus: int, runtime: str) -> int:
    duration, rounds = args.duration, args.rounds
    print(f"atoll Python API, {runtime}, {cpus} CPUs", flush=True)
    results: Dict[str, dict] = {}
    batch = 1000

    timeit("single_client_tasks_sync", lambda: atoll.get(small_value.remote()), 1, duration,
           rounds, results)
    timeit("single_client_tasks_async",
           lambda: atoll.get([small_value.remote() for _ in range(batch)]), batch, duration,
           rounds, results)

    a = Actor.remote()
    timeit("1_1_actor_calls_sync", lambda: atoll.get(a.small_value.remote()), 1, duration,
           rounds, results)
    timeit("1_1_actor_calls_async",
           lambda: atoll.get([a.small_value.remote() for _ in range(batch)]), batch, duration,
           rounds, results)

    servers = [Actor.remote() for _ in range(cpus)]
    clients = [Client.remote(s) for s in servers]
    per_client = batch // len(clients)
    timeit("n_n_actor_calls_async",
           lambda: atoll.get([c.small_value_batch.remote(per_client) for c in clients]),
           per_client * len(clients), duration, rounds, results)

    timeit("single_client_put_calls", lambda: atoll.put(0), 1, duration, rounds, results)
    value = atoll.put(0)
    timeit("single_client_get_calls", lambda: atoll.get(value), 1, duration, rounds, results)

    # Ray: np.zeros(100 * 1024 * 1024, dtype=np.int64), 0.8 GB per put. The array is written
    # first so its pages exist (np.zeros alone would be untouched copy-on-write zero pages).
    elements = (100 if not args.quick else 4) * 1024 * 1024
    arr = np.ones(elements, dtype=np.int64)
    timeit("single_client_put_gigabytes", lambda: atoll.put(arr), arr.nbytes / 1e9, duration,
           rounds, results)

    atoll.shutdown()
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpus": cpus, "python": sys.version.split()[0], "runtime": runtime,
                       "metrics": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
