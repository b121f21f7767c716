"""How Python values become object-store payloads, and back.

Values are pickled with protocol 5. Out-of-band buffers (numpy arrays, and bytes, bytearray and
memoryview values passed or returned directly) are handed to atoll._core, which copies each once
into the object store; reading returns them as read-only views of the stored block, so a large
array read back in the same process is not copied.

The fast path is the standard C pickler; what it refuses (lambdas, classes and functions defined
in ``__main__`` or locally, memoryviews nested in containers) goes through cloudpickle, which
pickles code by value.

ObjectRefs and actor handles inside a call's arguments do not travel in the pickle stream: each
is recorded in the call's ``refs`` list (its kind and its handle) and the stream keeps only its
index. Top-level ObjectRef arguments are marked *resolve* (the task receives the value, after the
runtime has waited for it); nested ones are *pass* (the task receives the ObjectRef).
"""

from __future__ import annotations

import io
import os
import pickle
import site
import sys
import sysconfig
import threading
from typing import Any, List, Optional, Tuple

import cloudpickle

from atoll import _core
from atoll.exceptions import SerializationError

# Top-level bytes-like values at least this large travel out of band.
OUT_OF_BAND_BYTES = 64 * 1024

_local = threading.local()  # this thread's refs list while pickling, extras while unpickling


class _Resolve:
    """A top-level ObjectRef argument: the task receives its value."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def __reduce__(self) -> Tuple[Any, ...]:
        return _record(_core.REF_RESOLVE, self.ref)


class _OutOfBand:
    """A large top-level bytes, bytearray or memoryview value, pickled as an out-of-band buffer."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> Tuple[Any, ...]:
        v = self.value
        rebuild = _as_bytes if type(v) is bytes else _as_bytearray if type(v) is bytearray else _as_view
        return (rebuild, (pickle.PickleBuffer(v),))


def _as_bytes(buf: Any) -> bytes:
    return bytes(buf)


def _as_bytearray(buf: Any) -> bytearray:
    return bytearray(buf)


def _as_view(buf: Any) -> memoryview:
    return memoryview(buf)  # a read-only view of the stored block: no copy


def _record(kind: int, handle: Any) -> Tuple[Any, ...]:
    refs = getattr(_local, "refs", None)
    if refs is None:
        what = "an actor handle" if kind == _core.REF_ACTOR else "an ObjectRef"
        raise SerializationError(
            f"{what} can only travel as an argument of a remote call (directly or inside a "
            "container); storing one inside a value (atoll.put or a return value) is not "
            "supported yet"
        )
    refs.append((kind, handle))
    return (_restore, (len(refs) - 1,))


def _restore(index: int) -> Any:
    # An ObjectRef, a resolved value, or an ActorToken (ActorHandle.__reduce__ wraps it again).
    return _local.extras[index]


def reduce_ref(ref: Any) -> Tuple[Any, ...]:
    """ObjectRef.__reduce__: a nested ObjectRef argument is passed as a reference."""
    return _record(_core.REF_PASS, ref)


def reduce_actor(token: Any) -> Tuple[Any, ...]:
    """ActorToken.__reduce__ (an ActorHandle passed to a remote call)."""
    return _record(_core.REF_ACTOR, token)


class _CloudPickler(cloudpickle.Pickler):
    """cloudpickle, plus memoryview and bytearray as out-of-band buffers anywhere in the value."""

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t is memoryview or (t is bytearray and len(obj) >= OUT_OF_BAND_BYTES):
            return _OutOfBand(obj).__reduce__()
        return super().reducer_override(obj)


def _mark(value: Any) -> Any:
    t = type(value)
    if t is _core.ObjectRef:
        return _Resolve(value)
    if (t is bytes or t is bytearray or t is memoryview) and len(value) >= OUT_OF_BAND_BYTES:
        return _OutOfBand(value)
    return value


def _dumps(value: Any, refs: Optional[list], what: str) -> Tuple[bytes, List[Any]]:
    buffers: List[Any] = []
    _local.refs = refs
    try:
        try:
            return pickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers
        except Exception:
            buffers.clear()
            if refs:
                refs.clear()
        out = io.BytesIO()
        try:
            _CloudPickler(out, protocol=5, buffer_callback=buffers.append).dump(value)
        except SerializationError:
            raise
        except Exception as e:
            raise SerializationError(f"could not serialize {what}: {type(e).__name__}: {e}") from e
        return out.getvalue(), buffers
    finally:
        _local.refs = None


def encode_call(args: tuple, kwargs: dict) -> Tuple[bytes, List[Any], list]:
    """The pickled ``(args, kwargs)`` of a remote call, its buffers, and its refs list."""
    refs: list = []
    args = tuple(_mark(a) for a in args)
    if kwargs:
        kwargs = {k: _mark(v) for k, v in kwargs.items()}
    stream, buffers = _dumps((args, kwargs), refs, "an argument")
    return stream, buffers, refs


def encode_value(value: Any, what: str = "the value") -> Tuple[bytes, List[Any]]:
    """A value to store (atoll.put, a return value): no ObjectRefs inside."""
    return _dumps(_mark_value(value), None, what)


def _mark_value(value: Any) -> Any:
    t = type(value)
    if (t is bytes or t is bytearray or t is memoryview) and len(value) >= OUT_OF_BAND_BYTES:
        return _OutOfBand(value)
    return value


def decode_call(stream: bytes, buffers: list, extras: list) -> Tuple[tuple, dict]:
    """``(args, kwargs)`` of a call, with its refs list replaced by ``extras``."""
    previous = getattr(_local, "extras", None)
    _local.extras = extras
    try:
        return pickle.loads(stream, buffers=buffers)
    finally:
        _local.extras = previous


def decode_value(stream: bytes, buffers: list) -> Any:
    return pickle.loads(stream, buffers=buffers)


def _installed(module: Any) -> bool:
    """Whether ``module`` comes with the interpreter or an installed package, so that another
    process with the same environment imports it rather than needing its code by value."""
    path = getattr(module, "__file__", None)
    if path is None:
        return True  # built in, or a namespace package
    path = os.path.realpath(path)
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    return any(path.startswith(os.path.realpath(r) + os.sep) for r in roots if r)


_by_value_lock = threading.Lock()


def dumps_code(obj: Any, portable: bool = False) -> bytes:
    """A function or class, by value when it is not importable (cloudpickle).

    ``portable``: for processes that may lack the code's source (a cluster's Python workers): the
    module that defines ``obj`` travels by value too unless it is installed, as a script's
    ``__main__`` does.
    """
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    by_value = (
        portable and module is not None and module.__name__ != "__main__" and not _installed(module)
    )
    try:
        if not by_value:
            return cloudpickle.dumps(obj, protocol=5)
        with _by_value_lock:
            if module.__name__ in cloudpickle.list_registry_pickle_by_value():
                return cloudpickle.dumps(obj, protocol=5)  # the caller's own choice: kept
            cloudpickle.register_pickle_by_value(module)
            try:
                return cloudpickle.dumps(obj, protocol=5)
            finally:
                cloudpickle.unregister_pickle_by_value(module)
    except Exception as e:
        raise SerializationError(f"could not serialize {obj!r}: {type(e).__name__}: {e}") from e
