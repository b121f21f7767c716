"""Calling C++ from Python: functions a C++ job module registers, called by name.

A C++ module is a shared library built with ``ATOLL_MODULE(name, reg)`` (see the C++ API); give it
to ``atoll.init(cpp_module=("libjob.so", "name"))``. Values cross as msgpack: ``None``, ``bool``,
``int`` (64-bit), ``float``, ``str``, ``bytes``/``bytearray``/``memoryview``, ``list``/``tuple``
and ``dict`` of those. A C++ result reads back as the same kinds (a C++ container as a list, an
``atl::Buffer`` as a read-only memoryview over the object store's memory, without a copy).

Example::

    atoll.init(cpp_module=("build/libjob.so", "job"))
    add = atoll.cpp_function("add")
    assert atoll.get(add.remote(1, 2)) == 3
"""

from __future__ import annotations

from typing import Any, Dict

from atoll import _options, _runtime
from atoll._core import ObjectRef


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
        if kwargs:
            raise TypeError(
                f"C++ function '{self._name}' takes positional arguments only, got "
                f"{', '.join(sorted(kwargs))}"
            )
        core = _runtime.current().core
        return core.submit_cpp_task(core.cpp_function(self._name), args, self._task_options)

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
