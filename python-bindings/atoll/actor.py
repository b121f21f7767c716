"""Actors: ``@atoll.remote`` on a class."""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Tuple

from atoll import _core, _options, _runtime, _serialization
from atoll._core import ObjectRef


def _method_names(cls: type) -> List[str]:
    names = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") and name != "__call__":
            continue
        if callable(member):
            names.append(name)
    return names


class ActorClass(_runtime.Definition):
    """A class whose instances are actors: create one with ``.remote(*ctor_args)``.

    The instance lives on a runtime worker thread; its methods run one at a time in the order
    each caller submitted them (``max_concurrency`` > 1 runs that many at once, on threads).
    A named actor (``.options(name=...)``) lives until ``atoll.kill`` and can be found with
    ``atoll.get_actor``; an unnamed one ends when its last handle is gone.
    """

    def __init__(self, cls: type, options: Dict[str, Any]) -> None:
        super().__init__(cls)
        self._class = cls
        self._options = _options.check(options, _options.ACTOR_OPTIONS, "actor")
        self._actor_options = _options.actor_options(self._options)
        self._methods = _method_names(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__
        self.__module__ = cls.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"actor class '{self._class.__qualname__}' cannot be instantiated directly: use "
            f"{self._class.__name__}.remote(...)"
        )

    def _register(self, rt: _runtime.Runtime, name: str, code: bytes) -> Any:
        return rt.core.register_actor_class(name, code, self._methods)

    def remote(self, *args: Any, **kwargs: Any) -> "ActorHandle":
        """Creates the actor (its constructor runs on the actor's thread) and returns its handle.

        A constructor that raises makes every call fail with ActorDiedError.
        """
        return _create(self, self._actor_options, args, kwargs)

    def options(self, **options: Any) -> "_BoundActorClass":
        """A creator with these options replacing the decorator's (same keys as atoll.remote)."""
        merged = dict(self._options)
        merged.update(options)
        return _BoundActorClass(self, _options.check(merged, _options.ACTOR_OPTIONS, "actor"))


class _BoundActorClass:
    def __init__(self, cls: ActorClass, options: Dict[str, Any]) -> None:
        self._cls = cls
        self._actor_options = _options.actor_options(options)

    def remote(self, *args: Any, **kwargs: Any) -> "ActorHandle":
        """Creates the actor with these options and returns its handle."""
        return _create(self._cls, self._actor_options, args, kwargs)


def _create(cls: ActorClass, options: Any, args: tuple, kwargs: dict) -> "ActorHandle":
    rt = _runtime.current()
    entry = cls._entry(rt)
    stream, buffers, refs = _serialization.encode_call(args, kwargs)
    return ActorHandle(rt.core.create_actor(entry, stream, buffers, refs, options))


class ActorHandle:
    """A reference to an actor: ``handle.method.remote(...)`` calls a method.

    Handles may be copied and passed to tasks and other actors (as arguments).
    """

    _method_type: Any  # what `handle.name` returns: ActorMethod, or CppActorMethod for C++ actors

    def __init__(self, token: Any) -> None:
        self._token = token
        self._methods = frozenset(token.method_names)

    def __getattr__(self, name: str) -> Any:
        methods = self.__dict__.get("_methods")
        if methods is None or name not in methods:
            cls = self.__dict__["_token"].class_name if "_token" in self.__dict__ else "?"
            raise AttributeError(f"actor class '{cls}' has no method '{name}'")
        method = self._method_type(self, name)
        self.__dict__[name] = method  # later lookups skip __getattr__
        return method

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self._token,))

    def __repr__(self) -> str:
        return f"ActorHandle({self._token.class_name}, {self._token.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._token.hex() == self._token.hex()

    def __hash__(self) -> int:
        return hash(self._token.hex())


class ActorMethod:
    """One method of an actor: ``.remote(...)`` submits a call and returns an ObjectRef."""

    def __init__(self, handle: ActorHandle, name: str) -> None:
        self._handle = handle
        self._name = name

    def remote(self, *args: Any, **kwargs: Any) -> ObjectRef:
        """Submits the call; calls from one caller run in submission order."""
        rt = _runtime.current()
        stream, buffers, refs = _serialization.encode_call(args, kwargs)
        return rt.core.call_method(self._handle._token, self._name, stream, buffers, refs)

    def options(self, **options: Any) -> "ActorMethod":
        if options:
            raise _options.UnsupportedOptionError(
                f"actor method options are not supported yet (got {', '.join(options)})"
            )
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor methods cannot be called directly: use .{self._name}.remote(...)")


ActorHandle._method_type = ActorMethod
