"""The exceptions atoll raises.

Every one derives from :class:`AtollError` and carries a ``category`` that says what to do next,
the same small set as the C++ API (``failed``, ``overloaded``, ``disconnected``, ``timed_out``,
``cancelled``, ``invalid_argument``, ``unimplemented``).

A remote function or actor method that raises makes ``atoll.get`` raise a :class:`TaskError`. When
the original exception class can be recreated, the error is an instance of a subclass of *both*
``TaskError`` and that class, so ``except ValueError`` still catches a remote ``ValueError``::

    try:
        atoll.get(fails.remote())
    except ValueError as e:          # also an atoll.TaskError
        print(e.remote_traceback)
"""

from __future__ import annotations

import pickle
from typing import Any, Dict, Optional, Tuple, Type

__all__ = [
    "AtollError",
    "TaskError",
    "TaskCancelledError",
    "GetTimeoutError",
    "ActorDiedError",
    "ObjectLostError",
    "InfeasibleError",
    "ObjectStoreFullError",
    "SerializationError",
    "RuntimeShutdownError",
    "UnsupportedOptionError",
]


class AtollError(Exception):
    """Base of every atoll exception. ``category`` says what to do next."""

    category: str = "failed"

    def __init__(self, message: str = "", category: Optional[str] = None) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category


class TaskError(AtollError):
    """A remote function or actor method raised.

    Attributes:
        remote_type: the original exception's type name (``"ValueError"``, ``"mod.MyError"``).
        remote_message: ``str()`` of the original exception.
        remote_traceback: the remote stack as text, most recent call last.
        task_name: the function's or ``Class.method``'s name.
        node: the node it ran on.
        cause: the original exception object, when it could be recreated here (else ``None``).
    """

    category = "failed"

    def __init__(
        self,
        message: str = "",
        remote_type: str = "",
        remote_message: str = "",
        remote_traceback: str = "",
        task_name: str = "",
        node: str = "",
        cause: Optional[BaseException] = None,
    ) -> None:
        AtollError.__init__(self, message)
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.task_name = task_name
        self.node = node
        self.cause = cause

    def __str__(self) -> str:
        head = self.args[0] if self.args else ""
        if not self.remote_traceback:
            return head
        return f"{head}\n\nRemote traceback (most recent call last):\n{self.remote_traceback.rstrip()}"

    def __reduce__(self) -> Tuple[Any, ...]:
        # Dual classes are made at run time; pickle as a plain TaskError that keeps every field.
        return (
            TaskError,
            (
                self.args[0] if self.args else "",
                self.remote_type,
                self.remote_message,
                self.remote_traceback,
                self.task_name,
                self.node,
            ),
        )


class TaskCancelledError(AtollError):
    """The task was cancelled (``atoll.cancel``) before it produced a value."""

    category = "cancelled"


class GetTimeoutError(AtollError, TimeoutError):
    """``atoll.get`` ran out of time; the value may still arrive later."""

    category = "timed_out"


class ActorDiedError(AtollError):
    """The actor was killed, its constructor raised, or it ended; its calls fail with this."""

    category = "disconnected"


class ObjectLostError(AtollError):
    """The object's value is gone and cannot be rebuilt."""

    category = "failed"


class InfeasibleError(AtollError):
    """No node can ever satisfy the task's or actor's resources or labels."""

    category = "invalid_argument"


class ObjectStoreFullError(AtollError):
    """The object store has no room for the value."""

    category = "overloaded"


class SerializationError(AtollError, TypeError):
    """A value could not be pickled or unpickled (an unpicklable argument, for instance)."""

    category = "invalid_argument"


class RuntimeShutdownError(AtollError):
    """The runtime was shut down (or never started) while the operation needed it."""

    category = "disconnected"


class UnsupportedOptionError(AtollError, ValueError):
    """An option atoll's runtime does not offer (yet), or an unknown option name."""

    category = "unimplemented"


_SIMPLE: Dict[str, Type[AtollError]] = {
    "cancelled": TaskCancelledError,
    "timeout": GetTimeoutError,
    "actor_died": ActorDiedError,
    "object_lost": ObjectLostError,
    "infeasible": InfeasibleError,
    "store_full": ObjectStoreFullError,
    "serialization": SerializationError,
    "shutdown": RuntimeShutdownError,
}

_dual_classes: Dict[type, type] = {}


def _dual_class(cause_type: type) -> Optional[type]:
    """TaskError(cause_type): a class that is both, so ``except cause_type`` catches it."""
    if cause_type in _dual_classes:
        return _dual_classes[cause_type]
    try:
        cls = type(f"TaskError({cause_type.__name__})", (TaskError, cause_type), {})
        cls.__module__ = __name__
    except TypeError:  # incompatible layouts (some built-in exceptions)
        cls = None
    _dual_classes[cause_type] = cls
    return cls


def _from_native(
    kind: str,
    message: str,
    category: str,
    remote_type: str = "",
    remote_message: str = "",
    remote_traceback: str = "",
    details: bytes = b"",
    task_name: str = "",
    node: str = "",
) -> BaseException:
    """Builds the Python exception for one raised by atoll's C++ core (called by atoll._core)."""
    if kind == "task":
        cause = None
        if details:
            try:
                cause = pickle.loads(details)
            except Exception:  # its class may not be importable here; keep the text
                cause = None
        cls = _dual_class(type(cause)) if isinstance(cause, Exception) else None
        if cls is None:
            return TaskError(
                message, remote_type, remote_message, remote_traceback, task_name, node, cause
            )
        err = cls.__new__(cls)
        TaskError.__init__(
            err, message, remote_type, remote_message, remote_traceback, task_name, node, cause
        )
        return err
    if kind in _SIMPLE:
        return _SIMPLE[kind](message)
    return AtollError(message, category)
