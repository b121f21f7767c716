"""Remote functions: values, ObjectRef arguments, nesting, options, errors, get/wait/cancel."""

import threading
import time

import pytest

import atoll
from conftest import WAIT


@atoll.remote
def add(a, b=0):
    return a + b


@atoll.remote
def identity(x):
    return x


@atoll.remote
def sleep_then(seconds, value):
    time.sleep(seconds)
    return value


class Custom(Exception):
    def __init__(self, code):
        super().__init__(f"code {code}")
        self.code = code


def test_values_kwargs_and_defaults():
    assert atoll.get(add.remote(1, 2), timeout=WAIT) == 3
    assert atoll.get(add.remote(1, b=5), timeout=WAIT) == 6
    assert atoll.get(add.remote("a", "b"), timeout=WAIT) == "ab"
    assert atoll.get(identity.remote({"k": [1, 2.5, None]}), timeout=WAIT) == {"k": [1, 2.5, None]}


def test_object_ref_arguments_resolve_before_the_task_runs():
    slow = sleep_then.remote(0.05, 40)
    assert atoll.get(add.remote(slow, b=add.remote(1, 1)), timeout=WAIT) == 42


def test_nested_object_refs_are_passed_as_refs():
    @atoll.remote
    def read_all(refs):
        assert all(isinstance(r, atoll.ObjectRef) for r in refs)
        return sum(atoll.get(refs))

    refs = [atoll.put(i) for i in range(5)]
    assert atoll.get(read_all.remote(refs), timeout=WAIT) == 10


def test_nested_remote_calls_deeper_than_the_cpus():
    @atoll.remote
    def depth(n):
        return 0 if n == 0 else 1 + atoll.get(depth.remote(n - 1))

    assert atoll.get(depth.remote(10), timeout=WAIT) == 10


def test_closures_and_lambdas_travel_by_value():
    scale = 3
    fn = lambda x: x * scale  # noqa: E731

    @atoll.remote
    def apply(f, x):
        return f(x)

    assert atoll.get(apply.remote(fn, 5), timeout=WAIT) == 15


def test_submissions_from_many_threads():
    @atoll.remote
    def offset(k, i):  # first used by all threads at once: registered once
        return k + i

    results = []

    def work(k):
        results.append(sum(atoll.get([offset.remote(k, i) for i in range(50)], timeout=WAIT)))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [50 * k + 1225 for k in range(4)]
    assert atoll.get(offset.remote(1, 1), timeout=WAIT) == 2


def test_get_list_and_wait():
    refs = [add.remote(i, i) for i in range(20)]
    assert atoll.get(refs, timeout=WAIT) == [2 * i for i in range(20)]
    slow = sleep_then.remote(0.5, "late")
    ready, not_ready = atoll.wait([refs[0], slow], num_returns=1, timeout=WAIT)
    assert ready == [refs[0]] and not_ready == [slow]
    ready, not_ready = atoll.wait([slow], num_returns=1, timeout=0.01)
    assert ready == [] and not_ready == [slow]
    with pytest.raises(ValueError):
        atoll.wait(refs[:2], num_returns=3)


def test_get_timeout_raises_and_the_value_still_arrives():
    ref = sleep_then.remote(0.3, "done")
    with pytest.raises(atoll.GetTimeoutError) as info:
        atoll.get(ref, timeout=0.01)
    assert isinstance(info.value, TimeoutError)
    assert info.value.category == "timed_out"
    assert atoll.get(ref, timeout=WAIT) == "done"


def test_remote_exception_keeps_type_message_and_traceback():
    @atoll.remote
    def fails(x):
        raise Custom(x)

    with pytest.raises(Custom) as info:
        atoll.get(fails.remote(7), timeout=WAIT)
    err = info.value
    assert isinstance(err, atoll.TaskError)
    assert err.remote_type.endswith("Custom")
    assert err.remote_message == "code 7"
    assert "raise Custom(x)" in err.remote_traceback
    assert "in fails" in err.remote_traceback
    assert err.cause.code == 7
    assert "Remote traceback" in str(err) and "code 7" in str(err)


def test_a_failed_dependency_fails_the_dependent_task():
    @atoll.remote
    def fails():
        raise KeyError("missing")

    with pytest.raises(KeyError) as info:
        atoll.get(add.remote(fails.remote(), 1), timeout=WAIT)
    assert isinstance(info.value, atoll.TaskError)


def test_nested_failure_keeps_its_origin():
    @atoll.remote
    def inner():
        raise ZeroDivisionError("deep")

    @atoll.remote
    def outer():
        return atoll.get(inner.remote())

    with pytest.raises(ZeroDivisionError) as info:
        atoll.get(outer.remote(), timeout=WAIT)
    assert "deep" in str(info.value)
    assert "in inner" in info.value.remote_traceback


def test_unpicklable_argument_raises_at_submission():
    lock = threading.Lock()
    with pytest.raises(atoll.SerializationError) as info:
        identity.remote(lock)
    assert "argument" in str(info.value) and "lock" in str(info.value)


def test_unpicklable_return_value_fails_the_task():
    @atoll.remote
    def make_lock():
        return threading.Lock()

    with pytest.raises(atoll.TaskError) as info:
        atoll.get(make_lock.remote(), timeout=WAIT)
    assert "return value" in str(info.value)


def test_retry_exceptions_reruns_a_failing_task():
    @atoll.remote
    class Tally:
        def __init__(self):
            self.n = 0

        def bump(self):
            self.n += 1
            return self.n

    tally = Tally.remote()

    @atoll.remote(retry_exceptions=True, max_retries=3)
    def flaky(t):
        if atoll.get(t.bump.remote()) < 3:
            raise RuntimeError("not yet")
        return "ok"

    assert atoll.get(flaky.remote(tally), timeout=WAIT) == "ok"
    # Without retry_exceptions the first failure is final.
    with pytest.raises(RuntimeError):
        atoll.get(flaky.options(retry_exceptions=False).remote(Tally.remote()), timeout=WAIT)


def test_options_map_onto_the_runtime():
    atoll.shutdown()
    atoll.init(num_cpus=2, resources={"disk": 1}, labels={"zone": "a"}, infeasible_timeout=0.2)
    assert atoll.get(add.options(num_cpus=0.5, name="half").remote(1, 1), timeout=WAIT) == 2
    assert atoll.get(add.options(resources={"disk": 1}).remote(2, 2), timeout=WAIT) == 4
    assert atoll.get(add.options(label_selector={"zone": ["a", "b"]}).remote(1, 2)) == 3
    assert atoll.get(add.options(labels={"zone": "a"}).remote(1, 3), timeout=WAIT) == 4
    with pytest.raises(atoll.InfeasibleError):
        atoll.get(add.options(num_gpus=1).remote(1, 1), timeout=WAIT)
    with pytest.raises(atoll.InfeasibleError):
        atoll.get(add.options(label_selector={"zone": "z"}).remote(1, 1), timeout=WAIT)


def test_unsupported_and_unknown_options_are_refused():
    with pytest.raises(atoll.UnsupportedOptionError, match="num_returns"):
        add.options(num_returns=2)
    with pytest.raises(atoll.UnsupportedOptionError, match="unknown task option 'cpus'"):
        atoll.remote(cpus=1)(lambda: None)
    with pytest.raises(atoll.UnsupportedOptionError, match="retry_exceptions"):
        add.options(retry_exceptions=[ValueError])
    with pytest.raises(atoll.AtollError, match="max_retries"):
        add.options(max_retries=-1).remote(1)


def test_calling_a_remote_function_directly_is_an_error():
    with pytest.raises(TypeError, match=r"add.remote"):
        add(1, 2)


def test_cancel_a_queued_task():
    atoll.shutdown()
    atoll.init(num_cpus=1)
    blocker = sleep_then.remote(0.3, 1)
    queued = add.remote(1, 2)
    assert atoll.cancel(queued) is True
    with pytest.raises(atoll.TaskCancelledError):
        atoll.get(queued, timeout=WAIT)
    assert atoll.get(blocker, timeout=WAIT) == 1
    assert atoll.cancel(blocker) is False


def test_the_gil_is_released_while_waiting():
    # The task needs the GIL to run while this thread waits in get: holding it would time out.
    assert atoll.get(sleep_then.remote(0.05, "ran"), timeout=WAIT) == "ran"
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    atoll.get(sleep_then.remote(0.2, None), timeout=WAIT)
    stop.set()
    t.join()
    assert len(ticks) > 1


def test_submitting_after_shutdown_raises():
    atoll.shutdown()
    assert not atoll.is_initialized()
    ref = add.remote(1, 1)  # starts a fresh runtime on first use, as Ray does
    assert atoll.get(ref, timeout=WAIT) == 2
    old = atoll._runtime.current()
    pending = sleep_then.remote(0.5, None)
    atoll.shutdown()
    with pytest.raises(atoll.RuntimeShutdownError):
        old.core.get([pending], WAIT)


def test_bad_cluster_options_say_why():
    atoll.shutdown()
    with pytest.raises(atoll.AtollError, match="127.0.0.1:1"):
        atoll.init(address="127.0.0.1:1", token="0" * 64)
    with pytest.raises(atoll.UnsupportedOptionError, match="give address"):
        atoll.init(token="abc")
    assert not atoll.is_initialized()


def test_help_is_useful():
    assert "num_cpus" in atoll.remote.__doc__ and "Example" in atoll.remote.__doc__
    assert "timeout" in atoll.get.__doc__
