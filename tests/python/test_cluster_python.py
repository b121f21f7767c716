"""Python functions and actors on a local cluster of real processes (`atoll up`): their code
travels by cloudpickle to Python worker processes the node agents start, and values (numpy arrays
out of band) move between the driver, the nodes and the workers."""

import os
import tempfile
import threading
import time

import numpy as np
import pytest

import atoll

from conftest import JOB, WAIT

# Module state the workers cannot import (this test module is not installed): its code and this
# constant travel by value.
SCALE = 3


@pytest.fixture(autouse=True)
def runtime(cluster):
    address, token = cluster
    atoll.init(address=address, token=token)
    yield
    atoll.shutdown()


@atoll.remote
def scaled(x):
    return x * SCALE


@atoll.remote
def where():
    return os.getpid()


@atoll.remote
def total(arr):
    return float(np.asarray(arr).sum())


@atoll.remote
def ones(n):
    return np.ones(n, dtype=np.float64)


@atoll.remote
def fails(x):
    raise ValueError(f"bad input {x}")


@atoll.remote
def crash():
    os._exit(3)


@atoll.remote
def fan_out(n):
    # Nested tasks from a worker go through the worker's own connection to the head.
    return sum(atoll.get([scaled.remote(i) for i in range(n)]))


@atoll.remote
class Counter:
    def __init__(self, start):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def pid(self):
        return os.getpid()

    def fail(self):
        raise KeyError("no such key")


def test_functions_run_in_python_workers_on_the_nodes():
    assert atoll.get(scaled.remote(14), timeout=WAIT) == 42
    refs = [scaled.remote(i) for i in range(300)]
    assert atoll.get(refs, timeout=WAIT) == [3 * i for i in range(300)]
    # An ObjectRef argument resolves to its value, also one made by another task.
    assert atoll.get(scaled.remote(scaled.remote(2)), timeout=WAIT) == 18
    assert atoll.get(scaled.remote(atoll.put(5)), timeout=WAIT) == 15
    pids = set(atoll.get([where.remote() for _ in range(20)], timeout=WAIT))
    assert os.getpid() not in pids


def test_numpy_arrays_travel_both_ways():
    small = np.arange(100, dtype=np.float64)
    assert atoll.get(total.remote(small), timeout=WAIT) == small.sum()
    big = np.arange(1 << 20, dtype=np.float64)  # 8 MiB: past the inline limit, by the data plane
    assert atoll.get(total.remote(big), timeout=WAIT) == big.sum()
    assert atoll.get(total.remote(atoll.put(big)), timeout=WAIT) == big.sum()
    made = ones.remote(1 << 20)  # stays on its node until read
    assert atoll.get(total.remote(made), timeout=WAIT) == float(1 << 20)
    back = atoll.get(made, timeout=WAIT)
    assert isinstance(back, np.ndarray) and back.shape == (1 << 20,) and back.sum() == 1 << 20
    assert atoll.get(ones.remote(10), timeout=WAIT).tolist() == [1.0] * 10


def test_exceptions_keep_their_type_message_and_traceback():
    with pytest.raises(atoll.TaskError) as info:
        atoll.get(fails.remote(7), timeout=WAIT)
    assert isinstance(info.value, ValueError)
    assert "bad input 7" in str(info.value)
    assert "raise ValueError" in info.value.remote_traceback


def test_a_worker_that_dies_fails_its_task_and_the_next_task_gets_a_new_worker():
    with pytest.raises(atoll.TaskError, match="worker process .* exited with status 3"):
        atoll.get(crash.remote(), timeout=WAIT)
    assert atoll.get(scaled.remote(1), timeout=WAIT) == 3


def test_unpicklable_arguments_fail_at_the_call_site():
    with pytest.raises(atoll.SerializationError):
        scaled.remote(threading.Lock())


def test_nested_tasks_from_a_worker():
    assert atoll.get(fan_out.remote(10), timeout=WAIT) == 3 * sum(range(10))


def test_actors_live_in_python_workers():
    c = Counter.remote(10)
    assert atoll.get([c.incr.remote() for _ in range(5)], timeout=WAIT) == [11, 12, 13, 14, 15]
    assert atoll.get(c.incr.remote(by=10), timeout=WAIT) == 25
    assert atoll.get(c.pid.remote(), timeout=WAIT) != os.getpid()
    with pytest.raises(atoll.TaskError) as info:
        atoll.get(c.fail.remote(), timeout=WAIT)
    assert isinstance(info.value, KeyError)
    assert atoll.get(c.incr.remote(), timeout=WAIT) == 26  # a method's exception leaves it alive

    named = Counter.options(name="cluster-counter").remote(0)
    found = atoll.get_actor("cluster-counter")
    assert atoll.get(found.incr.remote(5), timeout=WAIT) == 5
    assert atoll.get(named.incr.remote(), timeout=WAIT) == 6
    atoll.kill(named)
    with pytest.raises(atoll.ActorDiedError):
        atoll.get(named.incr.remote(), timeout=WAIT)


@atoll.remote
def bump(counter, by):
    # A handle passed to a task: the worker calls the actor through its own connection.
    return atoll.get(counter.incr.remote(by))


@atoll.remote
class Relay:
    def __init__(self, counter):
        self.counter = counter

    def forward(self, by):
        return atoll.get(self.counter.incr.remote(by))


def test_actor_handles_travel_to_tasks_and_other_actors():
    c = Counter.remote(0)
    assert atoll.get(bump.remote(c, 5), timeout=WAIT) == 5
    relay = Relay.remote(c)
    assert atoll.get(relay.forward.remote(2), timeout=WAIT) == 7
    assert atoll.get(c.incr.remote(), timeout=WAIT) == 8


def test_cpp_calls_python_by_import_path(cluster):
    # A C++ task on a node (a C++ driver of its own) calls Python functions the nodes' Python
    # workers import: plain values in and out.
    atoll.shutdown()
    address, token = cluster
    atoll.init(address=address, token=token, cpp_module=(JOB, "test_job"))
    call = atoll.cpp_function("call_python")
    assert atoll.get(call.remote("cluster_helpers", "triple", 5), timeout=WAIT) == 15
    assert atoll.get(call.remote("cluster_helpers", "decorated_square", 7), timeout=WAIT) == 49
    with pytest.raises(atoll.TaskError, match="python refuses 3"):
        atoll.get(call.remote("cluster_helpers", "fails", 3), timeout=WAIT)
    with pytest.raises(atoll.TaskError, match="no_such_module"):
        atoll.get(call.remote("no_such_module", "f", 1), timeout=WAIT)
    with pytest.raises(atoll.TaskError, match="not a Python module and function"):
        atoll.get(call.remote("bad module", "f", 1), timeout=WAIT)


def test_python_and_cpp_code_in_one_job(cluster):
    atoll.shutdown()
    address, token = cluster
    atoll.init(address=address, token=token, cpp_module=(JOB, "test_job"))
    add = atoll.cpp_function("add")
    # A C++ result is a plain value, which Python code reads.
    assert atoll.get(scaled.remote(add.remote(1, 2)), timeout=WAIT) == 9


@atoll.remote(max_restarts=1)
class Fragile:
    def __init__(self, start):
        self.n = start

    def incr(self):
        self.n += 1
        return self.n

    def crash(self):
        os._exit(5)


def test_an_actor_restarts_after_its_worker_dies_as_often_as_max_restarts_says():
    f = Fragile.remote(100)
    assert atoll.get(f.incr.remote(), timeout=WAIT) == 101
    with pytest.raises(atoll.ActorDiedError, match="exited with status 5"):
        atoll.get(f.crash.remote(), timeout=WAIT)
    # A call sent before the head learned of the death fails too; later ones reach the new
    # instance, whose constructor ran again with its arguments: the state starts over.
    value = None
    for _ in range(200):
        try:
            value = atoll.get(f.incr.remote(), timeout=WAIT)
            break
        except atoll.ActorDiedError:
            time.sleep(0.02)
    assert value == 101
    with pytest.raises(atoll.ActorDiedError):
        atoll.get(f.crash.remote(), timeout=WAIT)
    # No restarts left: dead for good (every later call says why).
    for _ in range(3):
        with pytest.raises(atoll.ActorDiedError, match="exited with status 5"):
            atoll.get(f.incr.remote(), timeout=WAIT)


@atoll.remote
def flaky(marker, crash):
    # Fails on its first attempt only: the marker file remembers across worker processes.
    if not os.path.exists(marker):
        open(marker, "w").close()
        if crash:
            os._exit(7)
        raise RuntimeError("first attempt")
    return "second attempt"


@atoll.remote
class Gate:
    def __init__(self):
        self.event = threading.Event()

    def wait(self):
        return self.event.wait(10)

    def open(self):
        self.event.set()
        return True


def test_task_and_actor_options_on_a_cluster():
    with tempfile.TemporaryDirectory() as d:
        # A lost worker is a system failure: retried up to max_retries.
        ref = flaky.options(max_retries=1).remote(os.path.join(d, "a"), True)
        assert atoll.get(ref, timeout=WAIT) == "second attempt"
        # An exception is retried only with retry_exceptions.
        with pytest.raises(atoll.TaskError, match="first attempt"):
            atoll.get(flaky.options(max_retries=1).remote(os.path.join(d, "b"), False),
                      timeout=WAIT)
        ref = flaky.options(max_retries=1, retry_exceptions=True).remote(os.path.join(d, "c"),
                                                                          False)
        assert atoll.get(ref, timeout=WAIT) == "second attempt"
    # Label selectors pick the nodes (each `atoll up` node is labelled with its island).
    for island in ("island-0", "island-1"):
        refs = [where.options(labels={"island": island}, num_cpus=0.5).remote()
                for _ in range(4)]
        assert len(atoll.get(refs, timeout=WAIT)) == 4
    # max_concurrency: the second call runs while the first waits for it.
    gate = Gate.options(max_concurrency=2).remote()
    waiting = gate.wait.remote()
    assert atoll.get(gate.open.remote(), timeout=WAIT)
    assert atoll.get(waiting, timeout=WAIT) is True
    # wait: some ready, in order.
    refs = [scaled.remote(i) for i in range(10)]
    ready, not_ready = atoll.wait(refs, num_returns=10, timeout=WAIT)
    assert ready == refs and not not_ready


@atoll.remote
def nap(seconds):
    time.sleep(seconds)
    return seconds


def test_cancel_and_bytes_like_values_on_a_cluster():
    busy = [nap.remote(1.0) for _ in range(4)]  # every CPU of the cluster
    queued = nap.remote(0)
    assert atoll.cancel(queued)
    with pytest.raises(atoll.TaskCancelledError):
        atoll.get(queued, timeout=WAIT)
    assert atoll.get(busy, timeout=WAIT) == [1.0] * 4
    data = bytes(range(256)) * 4096  # 1 MiB, out of band
    assert atoll.get(scaled.remote(data), timeout=WAIT) == data * 3
    view = atoll.get(atoll.put(memoryview(bytearray(data))), timeout=WAIT)
    assert bytes(view) == data


@atoll.remote
def initialized_inside():
    return atoll.is_initialized()


def test_empty_arrays_and_a_workers_view_of_the_runtime():
    assert atoll.get(ones.remote(0), timeout=WAIT).shape == (0,)
    assert atoll.get(total.remote(np.empty(0)), timeout=WAIT) == 0.0
    # A worker counts as initialized: `if not atoll.is_initialized(): atoll.init()` in task code
    # must not start an embedded runtime inside it.
    assert atoll.get(initialized_inside.remote(), timeout=WAIT) is True
