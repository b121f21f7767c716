"""Calling C++ from Python: functions and actor classes a C++ job module registers, by name.

A C++ module is a shared library built with ``ATOLL_MODULE(name, reg)`` (see the C++ API); give it
to ``atoll.init(cpp_module=("libjob.so", "name"))``. Values cross as msgpack: ``None``, ``bool``,
``int`` (64-bit), ``float``, ``str``, ``bytes``/``bytearray``/``memoryview``, ``list``/``tuple``
and ``dict`` of those. A C++ result reads back as the same kinds (a C++ container as a list, an
``atl::Buffer`` as a read-only memoryview over the object store's memory, without a copy).

Example::

    atoll.init(cpp_module=("build/libjob.so", "job"))
    add = atoll.cpp_function("add")
    assert atoll.get(add.remote(1, 2)) == 3
    counter = atoll.cpp_actor("Counter").remote(10)
    assert atoll.get(counter.incr.remote(5)) == 15
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from atoll import _options, _runtime
from atoll._core import ObjectRef
from atoll.actor import ActorHandle


def _plain(args: Tuple[Any, ...], kwargs: Dict[str, Any], callee: str) -> Tuple[Any, ...]:
    """Positional arguments for C++: actor handles travel as their tokens."""
    if kwargs:
        raise TypeError(
            f"{callee} takes positional arguments only, got {', '.join(sorted(kwargs))}"
        )
    return tuple(a._token if isinstance(a, ActorHandle) else a for a in args)


class CppFunction:
    """A C++ function of the job's C++ module: call it with ``.remote(*args)``.

    An ObjectRef argument is resolved first (the C++ parameter receives its value), unless the
    C++ parameter is itself an ``ObjectRef<T>``; the stored value must then be one C++ can read
    (a C++ task's result, not a pickled Python value).
    """

    def __init__(self, name: str, options: Dict[str, Any]) -> None:
        self._name = name
        self._options = options
        self._task_options = _options.task_options(options)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"atoll.cpp_function({self._name!r})"

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Submits the C++ function; returns an ObjectRef to its result.

        Raises:
            TypeError: keyword arguments (C++ parameters have no names), the wrong number of
                arguments, or a value msgpack cannot carry.
            AtollError: no C++ function has this name in the loaded module.
        """
        plain = _plain(args, kwargs, f"C++ function '{self._name}'")
        core = _runtime.current().core
        return core.submit_cpp_task(core.cpp_function(self._name), plain, self._task_options)

    def options(self, **options: Any) -> "CppFunction":
        """The same function with these task options (as ``atoll.remote`` takes for tasks)."""
        merged = dict(self._options)
        merged.update(options)
        return CppFunction(self._name, _options.check(merged, _options.TASK_OPTIONS, "task"))


def cpp_function(name: str, **options: Any) -> CppFunction:
    """The C++ function registered as ``name`` by the job's C++ module (see ``atoll.init``'s
    ``cpp_module``). The name is looked up when it is called, so a missing one raises then."""
    if not isinstance(name, str) or not name:
        raise TypeError("cpp_function takes the function's registered name")
    return CppFunction(name, _options.check(options, _options.TASK_OPTIONS, "task"))


class CppActorClass:
    """A C++ actor class of the job's C++ module: create an actor with ``.remote(*ctor_args)``.

    The constructor taking that many arguments runs (where the actor is placed: a thread of the
    embedded runtime, or a worker process on a cluster node); arguments convert as for
    ``cpp_function``, and an actor handle may be passed to an ``ActorHandle<T>`` parameter.
    """

    def __init__(self, name: str, options: Dict[str, Any]) -> None:
        self._name = name
        self._options = options
        self._actor_options = _options.actor_options(options)

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"atoll.cpp_actor({self._name!r})"

    def remote(self, *args: Any, **kwargs: Any) -> "CppActorHandle":
        """Creates the actor; returns its handle at once (a failing constructor makes every call
        raise ActorDiedError).

        Raises:
            TypeError: keyword arguments, no constructor taking that many arguments, or a value
                msgpack cannot carry.
            AtollError: no C++ actor class has this name in the loaded module.
        """
        plain = _plain(args, kwargs, f"C++ actor class '{self._name}'")
        core = _runtime.current().core
        cls = core.cpp_actor_class(self._name)
        return CppActorHandle(core.create_cpp_actor(cls, plain, self._actor_options))

    def options(self, **options: Any) -> "CppActorClass":
        """The same class with these actor options (``name``, ``num_cpus``, ``max_concurrency``,
        ...), as ``atoll.remote`` takes for classes."""
        merged = dict(self._options)
        merged.update(options)
        return CppActorClass(self._name, _options.check(merged, _options.ACTOR_OPTIONS, "actor"))


class CppActorHandle(ActorHandle):
    """A C++ actor: ``handle.method.remote(*args)`` calls a registered method with plain values."""


class CppActorMethod:
    """One method of a C++ actor: ``.remote(*args)`` submits a call and returns an ObjectRef."""

    def __init__(self, handle: CppActorHandle, name: str) -> None:
        self._handle = handle
        self._name = name

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Submits the call; calls from one caller run in submission order."""
        plain = _plain(args, kwargs, f"method '{self._name}'")
        core = _runtime.current().core
        return core.call_cpp_method(self._handle._token, self._name, plain)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor methods cannot be called directly: use .{self._name}.remote(...)")


def cpp_actor(name: str, **options: Any) -> CppActorClass:
    """The C++ actor class registered as ``name`` (``reg.actor<T>(name)``) by the job's C++
    module; looked up when an actor is created."""
    if not isinstance(name, str) or not name:
        raise TypeError("cpp_actor takes the class's registered name")
    return CppActorClass(name, _options.check(options, _options.ACTOR_OPTIONS, "actor"))


CppActorHandle._method_type = CppActorMethod
