"""atoll: remote tasks and actors on atoll's runtime, from Python.

Example::

    import atoll
    import numpy as np

    atoll.init()

    @atoll.remote
    def add(a, b):
        return a + b

    @atoll.remote(num_cpus=0.5)
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self, by):
            self.n += by
            return self.n

    x = add.remote(1, 2)
    assert atoll.get(add.remote(x, 10)) == 13      # x was resolved before the task ran
    c = Counter.remote()
    assert atoll.get(c.incr.remote(5)) == 5
    big = atoll.get(atoll.put(np.ones(1 << 20)))    # read back without a copy
    atoll.shutdown()

Today Python work runs on the embedded runtime (``atoll.init()`` with no address), on its worker
threads; see docs/architecture.md, "Python".
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar, Union, overload

from atoll._core import ObjectRef
from atoll._runtime import (
    cancel,
    get,
    get_actor,
    init,
    is_initialized,
    kill,
    put,
    shutdown,
    stats,
    wait,
)
from atoll.actor import ActorClass, ActorHandle, ActorMethod
from atoll.cpp import CppActorClass, CppActorHandle, CppFunction, cpp_actor, cpp_function
from atoll.exceptions import (
    ActorDiedError,
    AtollError,
    GetTimeoutError,
    InfeasibleError,
    ObjectLostError,
    ObjectStoreFullError,
    RuntimeShutdownError,
    SerializationError,
    TaskCancelledError,
    TaskError,
    UnsupportedOptionError,
)
from atoll.remote_function import RemoteFunction

__version__ = "0.1.0"

F = TypeVar("F", bound=Callable[..., Any])


@overload
def remote(function_or_class: type) -> ActorClass: ...
@overload
def remote(function_or_class: Callable[..., Any]) -> RemoteFunction: ...
@overload
def remote(**options: Any) -> Callable[[Any], Union[RemoteFunction, ActorClass]]: ...


def remote(function_or_class: Optional[Any] = None, **options: Any) -> Any:
    """Makes a function a remote task, or a class an actor class.

    Use it bare (``@atoll.remote``) or with options (``@atoll.remote(num_cpus=2)``). Then
    ``f.remote(*args)`` submits a task and returns an ObjectRef; ``Cls.remote(*args)`` creates
    an actor and returns its handle, whose methods are called as ``handle.m.remote(*args)``.
    ``.options(**options)`` overrides the options for one call site.

    Options for functions:
        num_cpus (float, default 1), num_gpus (float), memory (bytes),
        resources (dict of custom resource amounts), label_selector (dict: label -> value or
        list of values, e.g. ``{"island": ["eu-1", "eu-2"]}``; ``labels`` is the same option),
        max_retries (int, default 3: re-runs after a system failure),
        retry_exceptions (bool: also re-run when the function raises), name (str).

    Options for classes:
        num_cpus (float, default 0: held for the actor's life), num_gpus, memory, resources,
        label_selector, max_concurrency (int, default 1: calls at once),
        name (str: a named actor, found with atoll.get_actor, lives until atoll.kill),
        max_restarts (int, default 0; -1: always): on a cluster, how many times the actor is
        started again (constructor rerun, any fitting node) after its worker process or node
        died; calls running then fail with ActorDiedError, later ones reach the new instance.
        Embedded actors live in this process, so it has no effect there.
        max_task_retries only accepts 0.

    Raises:
        UnsupportedOptionError: an unknown option, or one the runtime does not offer (e.g.
            num_returns, placement_group, runtime_env, max_task_retries > 0).

    Example::

        @atoll.remote(num_cpus=0.5, max_retries=1)
        def square(x):
            return x * x

        refs = [square.remote(i) for i in range(4)]
        atoll.get(refs)                                   # [0, 1, 4, 9]
        atoll.get(square.options(name="sq").remote(5))    # 25
    """
    if function_or_class is not None:
        if options:
            raise TypeError("use @atoll.remote or @atoll.remote(**options), not both")
        return _make(function_or_class, {})
    return lambda target: _make(target, options)


def _make(target: Any, options: dict) -> Any:
    if isinstance(target, type):
        return ActorClass(target, options)
    if callable(target):
        return RemoteFunction(target, options)
    raise TypeError(f"@atoll.remote takes a function or a class, not {type(target).__name__}")


__all__ = [
    "ActorClass",
    "ActorDiedError",
    "ActorHandle",
    "ActorMethod",
    "AtollError",
    "CppActorClass",
    "CppActorHandle",
    "CppFunction",
    "GetTimeoutError",
    "InfeasibleError",
    "ObjectLostError",
    "ObjectRef",
    "ObjectStoreFullError",
    "RemoteFunction",
    "RuntimeShutdownError",
    "SerializationError",
    "TaskCancelledError",
    "TaskError",
    "UnsupportedOptionError",
    "cancel",
    "cpp_actor",
    "cpp_function",
    "get",
    "get_actor",
    "init",
    "is_initialized",
    "kill",
    "put",
    "remote",
    "shutdown",
    "stats",
    "wait",
]
