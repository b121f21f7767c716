"""Remote functions: ``@atoll.remote`` on a function."""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Generic, TypeVar

from atoll import _options, _runtime, _serialization
from atoll._core import ObjectRef

R = TypeVar("R")


class RemoteFunction(_runtime.Definition, Generic[R]):
    """A function that runs as a remote task: call it with ``.remote(...)``.

    ``.remote(*args, **kwargs)`` submits a task and returns an ObjectRef at once. An ObjectRef
    passed directly as an argument is resolved first (the function receives the value); one
    inside a container is passed as an ObjectRef. ``.options(...)`` returns a caller with other
    options for one call site.
    """

    def __init__(self, fn: Callable[..., R], options: Dict[str, Any]) -> None:
        super().__init__(fn)
        self._function = fn
        self._options = _options.check(options, _options.TASK_OPTIONS, "task")
        self._task_options = _options.task_options(self._options)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"remote function '{self._function.__qualname__}' cannot be called directly: use "
            f"{self._function.__name__}.remote(...) (and atoll.get on the result)"
        )

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
