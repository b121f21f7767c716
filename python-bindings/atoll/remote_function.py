"""Remote functions: ``@atoll.remote`` on a function."""

from __future__ import annotations

import functools
import uuid
from typing import Any, Callable, Dict, Generic, Optional, Tuple, TypeVar

from atoll import _options, _runtime, _serialization
from atoll._core import ObjectRef

R = TypeVar("R")

def qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "__main__"
    return f"{module}.{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', 'function')}"


class RemoteFunction(Generic[R]):
    """A function that runs as a remote task: call it with ``.remote(...)``.

    ``.remote(*args, **kwargs)`` submits a task and returns an ObjectRef at once. An ObjectRef
    passed directly as an argument is resolved first (the function receives the value); one
    inside a container is passed as an ObjectRef. ``.options(...)`` returns a caller with other
    options for one call site.
    """

    def __init__(self, fn: Callable[..., R], options: Dict[str, Any]) -> None:
        self._function = fn
        self._options = _options.check(options, _options.TASK_OPTIONS, "task")
        self._task_options = _options.task_options(self._options)
        self._name = qualified_name(fn)
        # Names this definition in every runtime, also in copies unpickled from it (a remote
        # function calling itself, or one passed to a task), so they share one registry entry.
        self._uid = uuid.uuid4().hex
        self._pickled: Optional[bytes] = None
        self._registered: Optional[Tuple[Any, Any]] = None  # (runtime, entry)
        functools.update_wrapper(self, fn)

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_pickled"] = None
        state["_registered"] = None  # belongs to this process's runtime
        return state

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"remote function '{self._function.__qualname__}' cannot be called directly: use "
            f"{self._function.__name__}.remote(...) (and atoll.get on the result)"
        )

    def _entry(self, rt: _runtime.Runtime) -> Any:
        registered = self._registered
        if registered is not None and registered[0] is rt:
            return registered[1]
        def register(name: str) -> Any:
            if self._pickled is None:
                self._pickled = _serialization.dumps_code(self._function)
            return rt.core.register_function(name, self._pickled)

        entry = rt.entry(self._uid, self._name, register)
        self._registered = (rt, entry)
        return entry

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Submits the task; returns an ObjectRef to its result."""
        rt = _runtime.current()
        entry = self._entry(rt)
        stream, buffers, refs = _serialization.encode_call(args, kwargs)
        return rt.core.submit_task(entry, stream, buffers, refs, self._task_options)

    def options(self, **options: Any) -> "_BoundFunction[R]":
        """A caller with these options replacing the decorator's (same keys as atoll.remote)."""
        merged = dict(self._options)
        merged.update(options)
        return _BoundFunction(self, _options.check(merged, _options.TASK_OPTIONS, "task"))


class _BoundFunction(Generic[R]):
    def __init__(self, fn: RemoteFunction[R], options: Dict[str, Any]) -> None:
        self._fn = fn
        self._task_options = _options.task_options(options)

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Submits the task with these options; returns an ObjectRef to its result."""
        rt = _runtime.current()
        entry = self._fn._entry(rt)
        stream, buffers, refs = _serialization.encode_call(args, kwargs)
        return rt.core.submit_task(entry, stream, buffers, refs, self._task_options)
