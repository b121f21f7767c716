"""Actors: state, order, constructors, names, kill, errors, concurrency, handles as arguments."""

import threading

import pytest

import atoll
from conftest import WAIT


@atoll.remote
class Counter:
    def __init__(self, start=0, step=1):
        self.n = start
        self.step = step

    def incr(self, by=None):
        self.n += self.step if by is None else by
        return self.n

    def value(self):
        return self.n

    def fail(self):
        raise ValueError(f"at {self.n}")


def test_state_and_constructor_arguments():
    c = Counter.remote(10, step=5)
    assert atoll.get(c.incr.remote(), timeout=WAIT) == 15
    assert atoll.get(c.incr.remote(by=1), timeout=WAIT) == 16
    start = atoll.put(100)
    d = Counter.remote(start)  # an ObjectRef constructor argument is resolved
    assert atoll.get(d.value.remote(), timeout=WAIT) == 100


def test_calls_run_in_submission_order():
    @atoll.remote
    class Log:
        def __init__(self):
            self.items = []

        def add(self, x):
            self.items.append(x)

        def items_(self):
            return self.items

    log = Log.remote()
    for i in range(500):
        log.add.remote(i)
    assert atoll.get(log.items_.remote(), timeout=WAIT) == list(range(500))


def test_method_exception_fails_the_call_not_the_actor():
    c = Counter.remote(3)
    with pytest.raises(ValueError) as info:
        atoll.get(c.fail.remote(), timeout=WAIT)
    assert isinstance(info.value, atoll.TaskError)
    assert "at 3" in info.value.remote_message
    assert "in fail" in info.value.remote_traceback
    assert atoll.get(c.incr.remote(), timeout=WAIT) == 4


def test_constructor_exception_kills_the_actor():
    @atoll.remote
    class Broken:
        def __init__(self):
            raise RuntimeError("cannot start")

        def ping(self):
            return "pong"

    b = Broken.remote()
    with pytest.raises(atoll.ActorDiedError, match="cannot start"):
        atoll.get(b.ping.remote(), timeout=WAIT)


def test_named_actor_get_actor_and_kill():
    c = Counter.options(name="shared").remote()
    atoll.get(c.incr.remote(), timeout=WAIT)
    same = atoll.get_actor("shared")
    assert same == c
    assert atoll.get(same.incr.remote(), timeout=WAIT) == 2
    with pytest.raises(atoll.AtollError, match="already exists"):
        Counter.options(name="shared").remote()
    atoll.kill(c)
    with pytest.raises(atoll.ActorDiedError):
        atoll.get(same.incr.remote(), timeout=WAIT)
    with pytest.raises(ValueError, match="no live actor"):
        atoll.get_actor("shared")
    Counter.options(name="shared").remote()  # the name is free again


def test_handles_travel_to_tasks():
    c = Counter.remote()

    @atoll.remote
    def bump_twice(counter):
        atoll.get(counter.incr.remote())
        return atoll.get(counter.incr.remote())

    assert atoll.get(bump_twice.remote(c), timeout=WAIT) == 2

    @atoll.remote
    def bump_all(counters):  # handles nested in a container travel too
        return [atoll.get(x.incr.remote()) for x in counters]

    assert atoll.get(bump_all.remote([c, c]), timeout=WAIT) == [3, 4]
    assert atoll.get(c.value.remote(), timeout=WAIT) == 4


def test_max_concurrency_runs_calls_at_once():
    @atoll.remote(max_concurrency=2)
    class Meeting:
        def __init__(self):
            self.barrier = threading.Barrier(2, timeout=10)

        def meet(self):
            return self.barrier.wait()

    m = Meeting.remote()
    # Both calls wait for each other: only concurrent calls can pass the barrier.
    assert sorted(atoll.get([m.meet.remote(), m.meet.remote()], timeout=WAIT)) == [0, 1]


def test_unknown_method_and_direct_use_are_errors():
    c = Counter.remote()
    with pytest.raises(AttributeError, match="no method 'nope'"):
        c.nope
    with pytest.raises(TypeError, match="Counter.remote"):
        Counter()
    with pytest.raises(TypeError):
        c.incr(1)


def test_max_restarts_is_checked_and_accepted_embedded():
    # Embedded actors live in this process: nothing to restart, but the option is valid.
    with pytest.raises(atoll.UnsupportedOptionError, match="max_restarts"):
        Counter.options(max_restarts=-2)
    with pytest.raises(atoll.UnsupportedOptionError, match="max_restarts"):
        Counter.options(max_restarts="2")
    assert atoll.get(Counter.options(max_restarts=2).remote().incr.remote(), timeout=WAIT) == 1
    assert atoll.get(Counter.options(max_restarts=-1).remote().incr.remote(), timeout=WAIT) == 1
