"""A Python driver of a local cluster of real processes (`atoll up`): C++ functions of the job
module run in worker processes on the nodes; objects move between the driver and the nodes."""

import os

import pytest

import atoll

from conftest import JOB, WAIT, fnv1a


@pytest.fixture(autouse=True)
def runtime(cluster):
    # Replaces conftest's embedded runtime: a driver of the module's cluster.
    address, token = cluster
    atoll.init(address=address, token=token, cpp_module=(JOB, "test_job"))
    yield
    atoll.shutdown()


def test_cpp_functions_run_on_the_nodes():
    add = atoll.cpp_function("add")
    assert atoll.get(add.remote(1, 2), timeout=WAIT) == 3
    assert atoll.get(add.remote(add.remote(1, 2), 10), timeout=WAIT) == 13
    refs = [add.remote(i, 1) for i in range(200)]
    assert atoll.get(refs, timeout=WAIT) == [i + 1 for i in range(200)]
    ready, not_ready = atoll.wait(refs, num_returns=200, timeout=WAIT)
    assert len(ready) == 200 and not not_ready
    assert atoll.get(atoll.cpp_function("nested").remote(41), timeout=WAIT) == 42


def test_large_results_come_from_their_node_and_go_back_without_the_driver_reading_them():
    size = 4 << 20  # above the inline limit: the value stays on the node that made it
    blob = atoll.cpp_function("buffer_blob").remote(size, 3)
    digest = atoll.get(atoll.cpp_function("buffer_digest").remote(blob), timeout=WAIT)
    data = atoll.get(blob, timeout=WAIT)
    assert isinstance(data, memoryview) and len(data) == size
    assert fnv1a(bytes(data)) == digest
    # A large value from the driver reaches a node's task through the data plane.
    payload = bytes(range(256)) * (size // 256)
    assert atoll.get(atoll.cpp_function("digest").remote(payload), timeout=WAIT) == fnv1a(payload)


def test_failures_name_the_node_and_the_exception():
    with pytest.raises(atoll.TaskError, match="bad input 3"):
        atoll.get(atoll.cpp_function("fails").remote(3), timeout=WAIT)
    with pytest.raises(atoll.AtollError, match="nope"):
        atoll.cpp_function("nope").remote(1)


def test_bad_connections_say_why(cluster):
    address, token = cluster
    atoll.shutdown()
    with pytest.raises(atoll.AtollError, match="token"):
        atoll.init(address=address, token="0" * len(token), cpp_module=(JOB, "test_job"))
    assert not atoll.is_initialized()
    with pytest.raises(atoll.UnsupportedOptionError, match="declare their own"):
        atoll.init(address=address, token=token, num_cpus=2, cpp_module=(JOB, "test_job"))
    with pytest.raises(atoll.AtollError, match="127.0.0.1:1"):
        atoll.init(address="127.0.0.1:1", token=token, cpp_module=(JOB, "test_job"))
    with pytest.raises(atoll.AtollError, match="cannot load"):
        atoll.init(address=address, token=token, cpp_module=("/nonexistent.so", "test_job"))
    assert not atoll.is_initialized()
    atoll.init(address=address, token=token, cpp_module=(JOB, "test_job"))  # for the fixture


def test_cpp_actors_live_in_worker_processes_on_the_nodes():
    counter = atoll.cpp_actor("Counter").remote(100)
    assert atoll.get([counter.incr.remote(2) for _ in range(3)], timeout=WAIT) == [102, 104, 106]
    pid = atoll.get(counter.pid.remote(), timeout=WAIT)
    assert pid != os.getpid()
    # The relay keeps what its constructor got by reference (the driver pins them for it): the
    # text ref and the counter handle outlive the driver's own.
    relay = atoll.cpp_actor("Relay").remote(counter, atoll.cpp_function("greet").remote("Ode"))
    assert atoll.get(relay.forward.remote(4), timeout=WAIT) == 110
    assert atoll.get(relay.text_length.remote(), timeout=WAIT) == len("hello, Ode")
    named = atoll.cpp_actor("Counter").options(name="py-named").remote(7)
    found = atoll.get_actor("py-named")
    assert isinstance(found, atoll.CppActorHandle)
    assert atoll.get(found.incr.remote(1), timeout=WAIT) == 8
    atoll.kill(named)
    atoll.kill(relay)
    atoll.kill(counter)
    with pytest.raises(atoll.ActorDiedError):
        atoll.get(counter.value.remote(), timeout=WAIT)
