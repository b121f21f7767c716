"""Python calling C++ functions by name (atoll.cpp_function) on the embedded runtime, with the
test job module the C++ cluster tests use (tests/cluster/job_module.cpp, built by CMake)."""

import os

import pytest

import atoll

from conftest import JOB, WAIT, fnv1a

@pytest.fixture(autouse=True)
def runtime():
    # Replaces conftest's runtime: this one loads the C++ module.
    assert os.path.exists(JOB), f"the C++ test job module is missing: build it first ({JOB})"
    atoll.init(num_cpus=4, infeasible_timeout=0.2, cpp_module=(JOB, "test_job"))
    yield
    atoll.shutdown()


def test_plain_values_cross_both_ways():
    add = atoll.cpp_function("add")
    assert atoll.get(add.remote(1, 2), timeout=WAIT) == 3
    assert atoll.get(atoll.cpp_function("greet").remote("Ada"), timeout=WAIT) == "hello, Ada"
    assert atoll.get(add.remote(-7, 2**31 - 8), timeout=WAIT) == 2**31 - 15


def test_a_cpp_result_feeds_another_cpp_call():
    add = atoll.cpp_function("add")
    assert atoll.get(add.remote(add.remote(1, 2), 10), timeout=WAIT) == 13
    refs = [add.remote(i, i) for i in range(50)]
    assert atoll.get(refs, timeout=WAIT) == [2 * i for i in range(50)]


def test_bytes_like_values_and_strings_reach_a_std_string():
    digest = atoll.cpp_function("digest")
    data = bytes(range(256)) * 10
    expected = fnv1a(data)
    for value in (data, bytearray(data), memoryview(data)):
        assert atoll.get(digest.remote(value), timeout=WAIT) == expected
    assert atoll.get(digest.remote("héllo"), timeout=WAIT) == fnv1a("héllo".encode())


def test_a_binary_cpp_string_reads_back_as_bytes():
    blob = atoll.get(atoll.cpp_function("blob").remote(4096, 5), timeout=WAIT)
    assert isinstance(blob, bytes) and len(blob) == 4096
    assert atoll.get(atoll.cpp_function("digest").remote(blob), timeout=WAIT) == fnv1a(blob)


def test_only_contiguous_memory_crosses():
    data = bytes(range(200))
    digest = atoll.cpp_function("digest")
    for view in (memoryview(data)[::-1], memoryview(data)[::2]):
        with pytest.raises(ValueError, match="contiguous"):
            digest.remote(view)
    assert atoll.get(digest.remote(memoryview(data)[10:20]), timeout=WAIT) == fnv1a(data[10:20])


def test_a_cpp_buffer_reads_back_without_a_copy():
    blob = atoll.get(atoll.cpp_function("buffer_blob").remote(1 << 20, 7), timeout=WAIT)
    assert isinstance(blob, memoryview)
    assert blob.readonly and len(blob) == 1 << 20
    again = atoll.get(atoll.cpp_function("buffer_digest").remote(blob), timeout=WAIT)
    assert again == fnv1a(bytes(blob))


def test_an_object_ref_parameter_gets_the_reference():
    greeting = atoll.cpp_function("greet").remote("Grace")
    length_of = atoll.cpp_function("length_of")
    assert atoll.get(length_of.remote(greeting), timeout=WAIT) == len("hello, Grace")
    with pytest.raises(TypeError, match="takes an ObjectRef"):
        length_of.remote("not a ref")


def test_a_cpp_exception_raises_task_error():
    with pytest.raises(atoll.TaskError) as info:
        atoll.get(atoll.cpp_function("fails").remote(5), timeout=WAIT)
    assert "invalid_argument" in info.value.remote_type
    assert "bad input 5" in str(info.value)


def test_options_apply_and_are_checked():
    add = atoll.cpp_function("add").options(num_cpus=2, name="adding")
    assert atoll.get(add.remote(2, 3), timeout=WAIT) == 5
    with pytest.raises(atoll.UnsupportedOptionError):
        atoll.cpp_function("add").options(num_returns=2)
    with pytest.raises(atoll.InfeasibleError):
        atoll.get(atoll.cpp_function("add", num_cpus=64).remote(1, 1), timeout=WAIT)


def test_bad_calls_are_refused_before_anything_runs():
    add = atoll.cpp_function("add")
    with pytest.raises(atoll.AtollError, match="nope"):
        atoll.cpp_function("nope").remote(1)
    with pytest.raises(TypeError, match="takes 2 arguments, got 3"):
        add.remote(1, 2, 3)
    with pytest.raises(TypeError, match="positional"):
        add.remote(1, b=2)
    with pytest.raises(TypeError, match="argument 2 of C\\+\\+ function 'add' has type object"):
        add.remote(1, object())
    with pytest.raises(ValueError, match="64 bits"):
        add.remote(1, 2**70)
    nested = []
    for _ in range(100):
        nested = [nested]
    with pytest.raises(ValueError, match="deeper"):
        atoll.cpp_function("digest").remote(nested)


def test_a_pickled_python_value_is_not_read_as_cpp():
    with pytest.raises(atoll.AtollError, match="type mismatch"):
        atoll.get(atoll.cpp_function("add").remote(atoll.put(1), 2), timeout=WAIT)


def test_a_python_function_is_not_a_cpp_function():
    @atoll.remote
    def twice(x):
        return 2 * x

    assert atoll.get(twice.remote(4), timeout=WAIT) == 8
    with pytest.raises(atoll.AtollError, match="not a typed C\\+\\+ function"):
        atoll.cpp_function(twice._name).remote(4)


def test_modules_that_cannot_be_loaded_are_refused_clearly():
    atoll.shutdown()
    with pytest.raises(atoll.AtollError, match="cannot load"):
        atoll.init(cpp_module=("/nonexistent/libjob.so", "job"))
    assert not atoll.is_initialized()
    with pytest.raises(atoll.AtollError, match="has no module 'other'"):
        atoll.init(cpp_module=(JOB, "other"))
    with pytest.raises(TypeError, match="cpp_module takes"):
        atoll.init(cpp_module="just a path")
    atoll.init(num_cpus=2, cpp_module=(JOB, "test_job"))  # the fixture shuts it down


def test_cpp_calls_a_python_function_by_name():
    @atoll.remote
    def triple(x):
        return 3 * x

    @atoll.remote
    def unreadable(x):
        return {1, 2, x}  # a set: no msgpack equivalent

    @atoll.remote
    def raises(x):
        raise KeyError(f"no {x}")

    rt = atoll._runtime.current()
    names = {f: f._entry(rt).name for f in (triple, unreadable, raises)}  # registers them
    call = atoll.cpp_function("call_by_name")
    assert atoll.get(call.remote(names[triple], 5), timeout=WAIT) == 15
    with pytest.raises(atoll.AtollError, match="called from C\\+\\+"):
        atoll.get(call.remote(names[unreadable], 5), timeout=WAIT)
    with pytest.raises(atoll.AtollError, match="no 7"):
        atoll.get(call.remote(names[raises], 7), timeout=WAIT)
    # Python's own calls of the same entries still pickle: any value comes back.
    assert atoll.get(unreadable.remote(3), timeout=WAIT) == {1, 2, 3}


def test_cpp_actors_keep_state_and_take_handles():
    counter = atoll.cpp_actor("Counter").remote(10)
    assert isinstance(counter, atoll.CppActorHandle)
    assert atoll.get([counter.incr.remote(1) for _ in range(5)], timeout=WAIT) == [11, 12, 13, 14, 15]
    assert atoll.get(counter.value.remote(), timeout=WAIT) == 15
    assert atoll.get(atoll.cpp_actor("Counter").remote().value.remote(), timeout=WAIT) == 0
    # A C++ actor taking another actor's handle and an ObjectRef parameter.
    text = atoll.cpp_function("greet").remote("Lin")
    relay = atoll.cpp_actor("Relay").remote(counter, text)
    assert atoll.get(relay.forward.remote(5), timeout=WAIT) == 20
    assert atoll.get(relay.text_length.remote(), timeout=WAIT) == len("hello, Lin")
    with pytest.raises(atoll.TaskError, match="domain_error"):
        atoll.get(counter.fail.remote(1), timeout=WAIT)
    assert atoll.get(counter.value.remote(), timeout=WAIT) == 20  # the actor lives on
    atoll.kill(counter)
    with pytest.raises(atoll.ActorDiedError):
        atoll.get(counter.value.remote(), timeout=WAIT)


def test_cpp_actor_errors_are_clear():
    with pytest.raises(atoll.AtollError, match="no actor class named 'Nope'"):
        atoll.cpp_actor("Nope").remote()
    with pytest.raises(TypeError, match="no constructor taking 3 arguments"):
        atoll.cpp_actor("Counter").remote(1, 2, 3)
    counter = atoll.cpp_actor("Counter").options(name="named-counter").remote(1)
    found = atoll.get_actor("named-counter")
    assert isinstance(found, atoll.CppActorHandle) and found == counter
    assert atoll.get(found.incr.remote(2), timeout=WAIT) == 3
    with pytest.raises(AttributeError, match="no method 'decr'"):
        counter.decr.remote(1)
    with pytest.raises(TypeError, match="takes 1 argument, got 2"):
        counter.incr.remote(1, 2)
    with pytest.raises(TypeError, match="takes an actor handle"):
        atoll.cpp_actor("Relay").remote(1, atoll.cpp_function("greet").remote("x"))
    with pytest.raises(TypeError, match="takes no actor handle"):
        counter.incr.remote(counter)

    @atoll.remote
    class PyCounter:
        def value(self):
            return 0

    PyCounter.remote()  # registers the Python class
    name = PyCounter._entry(atoll._runtime.current()).name
    with pytest.raises(atoll.AtollError, match="is a Python actor class"):
        atoll.cpp_actor(name).remote()
