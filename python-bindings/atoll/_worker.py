"""What runs on the runtime's worker threads when a Python task, constructor or method executes.

atoll._core calls these with the GIL held. Each returns ``(stream, buffers)`` for a result, or
``(type, message, traceback, details)`` for an exception, which the core raises to the caller as
an atoll TaskError (``details`` is the pickled exception, so the caller can rebuild its class).
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any, List, Tuple

import cloudpickle

from atoll import _serialization
from atoll.exceptions import SerializationError, TaskError

Outcome = Tuple[Any, ...]


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _pickled(e: BaseException) -> bytes:
    for dumps in (pickle.dumps, cloudpickle.dumps):
        try:
            return dumps(e, protocol=5)
        except Exception:
            continue
    return b""


def failure(e: BaseException, skip: int = 1) -> Outcome:
    """The outcome for exception ``e``, its traceback without atoll's own ``skip`` frames."""
    if isinstance(e, TaskError):  # a nested task's failure, re-raised: keep where it came from
        cause = e.cause if e.cause is not None else e
        return (e.remote_type, e.remote_message, e.remote_traceback, _pickled(cause))
    tb = e.__traceback__
    for _ in range(skip):
        if tb is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_tb(tb) + traceback.format_exception_only(type(e), e))
    return (_type_name(type(e)), str(e), text, _pickled(e))


def _result(value: Any) -> Outcome:
    try:
        return _serialization.encode_value(value, "the return value")
    except SerializationError as e:
        return failure(e, skip=99)


def run_function(fn: Any, stream: bytes, buffers: List[Any], extras: List[Any]) -> Outcome:
    try:
        args, kwargs = _serialization.decode_call(stream, buffers, extras)
    except Exception as e:
        return failure(SerializationError(f"could not deserialize the arguments: {e}"), 99)
    try:
        value = fn(*args, **kwargs)
    except Exception as e:
        return failure(e)
    return _result(value)


def run_plain(fn: Any, args: List[Any]) -> Outcome:
    """A call from C++ by name: positional plain values (ObjectRefs and actors as they came).
    Returns ``(value,)`` for the core to encode as msgpack, or a failure."""
    from atoll import _core
    from atoll.actor import ActorHandle

    try:
        args = [ActorHandle(a) if isinstance(a, _core.ActorToken) else a for a in args]
        value = fn(*args)
    except Exception as e:
        return failure(e)
    return (value,)


def construct_actor(cls: Any, stream: bytes, buffers: List[Any], extras: List[Any]) -> Outcome:
    """``(instance,)``, or a failure."""
    try:
        args, kwargs = _serialization.decode_call(stream, buffers, extras)
    except Exception as e:
        return failure(SerializationError(f"could not deserialize the arguments: {e}"), 99)
    try:
        return (cls(*args, **kwargs),)
    except Exception as e:
        return failure(e)


def run_method(
    instance: Any, name: str, stream: bytes, buffers: List[Any], extras: List[Any]
) -> Outcome:
    try:
        args, kwargs = _serialization.decode_call(stream, buffers, extras)
    except Exception as e:
        return failure(SerializationError(f"could not deserialize the arguments: {e}"), 99)
    try:
        value = getattr(instance, name)(*args, **kwargs)
    except Exception as e:
        return failure(e)
    return _result(value)


def method_names(cls: Any) -> List[str]:
    """The methods an actor of ``cls`` offers (a node's worker registers them)."""
    from atoll.actor import _method_names

    return _method_names(cls)


def load_code(pickled: bytes) -> Any:
    code = pickle.loads(pickled)
    # A function named by import path (C++'s rt.python_task) may be an @atoll.remote one: run
    # what it decorates.
    from atoll._runtime import Definition

    return code._definition if isinstance(code, Definition) else code


def load_value(stream: bytes, buffers: List[Any]) -> Any:
    return _serialization.decode_value(stream, buffers)
