#!/usr/bin/env python3
"""The Python workloads of the peer comparison (benchmarks/peer_benchmarks.py), for one system.

One process runs one system, so each is measured with its own runtime and nothing else loaded:

  python peer_workloads.py --system atoll            # atoll's Python API, embedded runtime
  python peer_workloads.py --system atoll-cluster    # atoll's Python API driving `atoll up`
  python peer_workloads.py --system ray              # ray.init(num_cpus=N), local
  python peer_workloads.py --system ray-default      # ray.init() with Ray's own defaults
  python peer_workloads.py --system dask             # distributed.LocalCluster(processes=True)

The workloads and their names are Ray's microbenchmarks (python/ray/_private/ray_perf.py): the
same shapes, batch sizes and return values (``b"ok"``), so one figure means the same work on every
system. A workload is timed for --duration seconds per repetition, --repetitions times; each
repetition's rate is written to --out as JSON, with the system's version. A workload a system has
no equivalent for is recorded as skipped with the reason; one that fails is recorded with its
error and the others still run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
BATCH = 1000  # tasks or calls per async operation, as Ray's


def rates(fn: Callable[[], Any], multiplier: float, duration: float, repetitions: int,
          budget: float) -> List[float]:
    """Runs ``fn`` for ``duration`` seconds, ``repetitions`` times: each time's operations per
    second times ``multiplier`` (calls per operation, or gigabytes). A repetition is at least one
    operation; when one operation takes so long that the repetitions would overrun ``budget``
    seconds (a slow system's 1,000-ref wait), fewer are run (at least one)."""
    start = time.perf_counter()
    fn()  # warm up: registration, first connections, first allocations
    one = time.perf_counter() - start
    if one * repetitions > budget:
        repetitions = max(1, int(budget / max(one, 1e-9)))
    out = []
    for _ in range(repetitions):
        count, start = 0, time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= duration:
                break
        out.append(count * multiplier / elapsed)
    return out


class RayLike:
    """atoll and Ray share the API these workloads use (remote, get, put, wait)."""

    def __init__(self, rt: Any, cpus: int) -> None:
        self.rt = rt
        self.cpus = cpus
        remote = rt.remote

        @remote
        def small_value():
            return b"ok"

        @remote(num_cpus=0)
        class Actor:
            def small_value(self):
                return b"ok"

        @remote(num_cpus=0)
        class Submitter:
            # multi_client_tasks_async: each is a client of its own, submitting tasks.
            def small_value_batch(self, n):
                rt.get([small_value.remote() for _ in range(n)])
                return n

        @remote(num_cpus=0)
        class Client:
            def __init__(self, server):
                self.server = server

            def small_value_batch(self, n):
                rt.get([self.server.small_value.remote() for _ in range(n)])
                return n

        self.small_value, self.Actor, self.Submitter, self.Client = (
            small_value, Actor, Submitter, Client)

    def workloads(self, quick: bool) -> Dict[str, tuple]:
        rt, small_value, cpus = self.rt, self.small_value, self.cpus
        a = self.Actor.remote()
        servers = [self.Actor.remote() for _ in range(cpus)]
        clients = [self.Client.remote(s) for s in servers]
        submitters = [self.Submitter.remote() for _ in range(cpus)]
        per_client = BATCH // cpus
        value = rt.put(0)
        array = np.ones((4 if quick else 100) * 1024 * 1024, dtype=np.int64)  # Ray: 800 MB

        def wait_1k_refs():
            not_ready = [small_value.remote() for _ in range(BATCH)]
            while not_ready:
                _, not_ready = rt.wait(not_ready, num_returns=1)

        return {
            "single_client_tasks_sync": (lambda: rt.get(small_value.remote()), 1),
            "single_client_tasks_async":
                (lambda: rt.get([small_value.remote() for _ in range(BATCH)]), BATCH),
            "multi_client_tasks_async":
                (lambda: rt.get([s.small_value_batch.remote(per_client) for s in submitters]),
                 per_client * cpus),
            "1_1_actor_calls_sync": (lambda: rt.get(a.small_value.remote()), 1),
            "1_1_actor_calls_async":
                (lambda: rt.get([a.small_value.remote() for _ in range(BATCH)]), BATCH),
            "1_n_actor_calls_async":
                (lambda: rt.get([servers[i % cpus].small_value.remote() for i in range(BATCH)]),
                 BATCH),
            "n_n_actor_calls_async":
                (lambda: rt.get([c.small_value_batch.remote(per_client) for c in clients]),
                 per_client * cpus),
            "single_client_put_calls": (lambda: rt.put(0), 1),
            "single_client_get_calls": (lambda: rt.get(value), 1),
            "single_client_put_gigabytes": (lambda: rt.put(array), array.nbytes / 1e9),
            "single_client_wait_1k_refs": (wait_1k_refs, 1),
            "single_client_tasks_and_get_batch":
                (lambda: rt.get([small_value.remote() for _ in range(BATCH)]), 1),
        }


def dask_small_value():
    return b"ok"


def dask_submit_batch(n):
    from distributed import worker_client

    with worker_client() as c:
        c.gather([c.submit(dask_small_value, pure=False) for _ in range(n)])
    return n


class DaskActor:
    def small_value(self):
        return b"ok"


class Dask:
    """Dask distributed's equivalents: futures for tasks, scatter for put, Dask actors."""

    def __init__(self, client: Any, cpus: int) -> None:
        self.client, self.cpus = client, cpus

    def workloads(self, quick: bool) -> Dict[str, tuple]:
        from distributed import wait

        c, cpus = self.client, self.cpus
        submit = lambda: c.submit(dask_small_value, pure=False)  # noqa: E731
        a = c.submit(DaskActor, actor=True).result()
        servers = [c.submit(DaskActor, actor=True, pure=False).result() for _ in range(cpus)]
        per_client = BATCH // cpus
        value = c.scatter(0)
        array = np.ones((4 if quick else 100) * 1024 * 1024, dtype=np.int64)

        def wait_1k_refs():
            not_ready = [submit() for _ in range(BATCH)]
            while not_ready:
                not_ready = list(wait(not_ready, return_when="FIRST_COMPLETED").not_done)

        return {
            "single_client_tasks_sync": (lambda: submit().result(), 1),
            "single_client_tasks_async": (lambda: c.gather([submit() for _ in range(BATCH)]), BATCH),
            "multi_client_tasks_async":
                (lambda: c.gather([c.submit(dask_submit_batch, per_client, pure=False)
                                   for _ in range(cpus)]), per_client * cpus),
            "1_1_actor_calls_sync": (lambda: a.small_value().result(), 1),
            "1_1_actor_calls_async":
                (lambda: [f.result() for f in [a.small_value() for _ in range(BATCH)]], BATCH),
            "1_n_actor_calls_async":
                (lambda: [f.result() for f in [servers[i % cpus].small_value()
                                               for i in range(BATCH)]], BATCH),
            "n_n_actor_calls_async": None,  # an actor calling another actor: no Dask equivalent
            "single_client_put_calls": (lambda: c.scatter(0), 1),
            "single_client_get_calls": (lambda: value.result(), 1),
            "single_client_put_gigabytes": (lambda: c.scatter(array), array.nbytes / 1e9),
            "single_client_wait_1k_refs": (wait_1k_refs, 1),
            "single_client_tasks_and_get_batch":
                (lambda: c.gather([submit() for _ in range(BATCH)]), 1),
        }


@contextlib.contextmanager
def atoll_cluster(cpus: int) -> Iterator[tuple]:
    """`atoll up` (one node with `cpus` CPUs, Python workers on this interpreter) in a private
    state directory; (address, token)."""
    cli = os.environ.get("ATOLL_CLI", str(ROOT / "build" / "atoll"))
    if not os.path.exists(cli):
        raise RuntimeError(f"the atoll CLI is not built at {cli}")
    state = tempfile.mkdtemp(prefix="atoll-peers-")
    env = dict(os.environ, ATOLL_STATE_DIR=state)
    try:
        subprocess.run([cli, "up", "--islands", "1", "--nodes-per-island", "1", "--cpus",
                        str(cpus), "--python", sys.executable], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        yield (pathlib.Path(state, "head.addr").read_text().strip(),
               pathlib.Path(state, "token").read_text().strip())
    finally:
        subprocess.run([cli, "down"], env=env, stdout=subprocess.DEVNULL, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def start(system: str, cpus: int) -> Iterator[tuple]:
    """The system's runtime, started: (workload maker, version)."""
    if system in ("atoll", "atoll-cluster"):
        import atoll

        with contextlib.ExitStack() as stack:
            if system == "atoll":
                atoll.init(num_cpus=cpus)
            else:
                address, token = stack.enter_context(atoll_cluster(cpus))
                atoll.init(address=address, token=token)
            try:
                yield RayLike(atoll, cpus), atoll.__version__
            finally:
                atoll.shutdown()
    elif system in ("ray", "ray-default"):
        import ray

        if system == "ray":
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init()
        try:
            yield RayLike(ray, cpus), ray.__version__
        finally:
            ray.shutdown()
    elif system == "dask":
        import distributed

        with distributed.LocalCluster(n_workers=cpus, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield Dask(client, cpus), distributed.__version__
    else:
        raise SystemExit(f"unknown system '{system}'")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per repetition")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller arrays")
    parser.add_argument("--only", help="comma-separated workload names")
    parser.add_argument("--budget", type=float, help="seconds per workload at most, roughly "
                        "(default: 6 x duration x repetitions, at least 5)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    budget = args.budget or max(5.0, 6 * args.duration * args.repetitions)
    report: Dict[str, Any] = {"system": args.system, "cpus": args.cpus, "results": {},
                              "skipped": {}, "errors": {}}
    try:
        with start(args.system, args.cpus) as (maker, version):
            report["version"] = version
            workloads = maker.workloads(args.quick)
            only = set(args.only.split(",")) if args.only else None
            for name, spec in workloads.items():
                if only is not None and name not in only:
                    continue
                if spec is None:
                    report["skipped"][name] = "no equivalent in this system"
                    continue
                try:
                    fn, multiplier = spec
                    report["results"][name] = rates(fn, multiplier, args.duration,
                                                    args.repetitions, budget)
                    print(f"{args.system}: {name} done", file=sys.stderr, flush=True)
                except Exception as e:  # one workload failing must not lose the others
                    report["errors"][name] = f"{type(e).__name__}: {e}"
                    traceback.print_exc()
    except Exception as e:
        report["errors"]["(start)"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
