"""The current runtime (what atoll.init starts) and the calls that act on objects and actors."""

from __future__ import annotations

import atexit
import threading
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union, overload

from atoll import _core, _serialization, _worker
from atoll.exceptions import AtollError, RuntimeShutdownError, UnsupportedOptionError

ObjectRef = _core.ObjectRef
T = TypeVar("T")


class Runtime:
    """One started runtime: the core plus the Python entries registered with it."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.lock = threading.Lock()  # registration of functions and classes
        self._names: Dict[str, int] = {}
        self.entries: Dict[str, Any] = {}  # a definition's uid -> its registry entry

    def unique_name(self, name: str) -> str:
        """``module.qualname`` for the first definition, ``module.qualname#2`` for a second one
        (redefined in a notebook, made in a loop). Call with ``lock`` held."""
        n = self._names.get(name, 0) + 1
        self._names[name] = n
        return name if n == 1 else f"{name}#{n}"

    def entry(self, uid: str, name: str, register: Callable[[str], Any]) -> Any:
        """The registry entry of definition ``uid``: made once by ``register(unique name)``."""
        with self.lock:
            found = self.entries.get(uid)
            if found is None:
                found = self.entries[uid] = register(self.unique_name(name))
            return found


def qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "__main__"
    return f"{module}.{getattr(obj, '__qualname__', None) or getattr(obj, '__name__', 'function')}"


class Definition:
    """A remote function or actor class: registered with each runtime it is used in, once.

    The uid names this definition in every runtime, also in copies unpickled from it (a remote
    function calling itself, or one passed to a task), so they share one registry entry.
    """

    def __init__(self, obj: Any) -> None:
        self._definition = obj
        self._name = qualified_name(obj)
        self._uid = uuid.uuid4().hex
        self._pickled: Optional[bytes] = None
        self._portable: Optional[bytes] = None  # pickled for a cluster's workers
        self._registered: Optional[Tuple[Runtime, Any]] = None

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_pickled"] = None
        state["_portable"] = None
        state["_registered"] = None  # belongs to this process's runtime
        return state

    def _register(self, rt: Runtime, name: str, code: bytes) -> Any:
        """Adds the definition (pickled as ``code``) to ``rt``'s registry under ``name``."""
        return rt.core.register_function(name, code)

    def _entry(self, rt: Runtime) -> Any:
        registered = self._registered
        if registered is not None and registered[0] is rt:
            return registered[1]
        portable = rt.core.is_cluster  # the code runs in other processes, on other machines

        def register(name: str) -> Any:
            if portable:
                if self._portable is None:
                    self._portable = _serialization.dumps_code(self._definition, portable=True)
                return self._register(rt, name, self._portable)
            if self._pickled is None:
                self._pickled = _serialization.dumps_code(self._definition)
            return self._register(rt, name, self._pickled)

        entry = rt.entry(self._uid, self._name, register)
        self._registered = (rt, entry)
        return entry


# The "current runtime" handle that atoll.init sets and every call uses, as in Ray. Module state
# is only this handle; the runtime it names owns everything else. In a node's Python worker,
# `_worker_connect` joins the worker's cluster runtime on first use instead (nested tasks).
_current: Optional[Runtime] = None
_worker_connect: Optional[Callable[[], Any]] = None
_init_lock = threading.Lock()
_atexit_registered = False


def init(
    address: Optional[str] = None,
    *,
    num_cpus: Optional[float] = None,
    num_gpus: Optional[float] = None,
    gpu_model: Optional[str] = None,
    resources: Optional[Mapping[str, float]] = None,
    labels: Optional[Mapping[str, str]] = None,
    object_store_memory: Optional[int] = None,
    infeasible_timeout: float = 5.0,
    ignore_reinit_error: bool = False,
    token: Optional[str] = None,
    cpp_module: Optional[Tuple[str, str]] = None,
) -> None:
    """Starts atoll's embedded runtime in this process, or connects it to a cluster.

    The embedded runtime is the same scheduler, object store and workers a cluster node runs,
    wired inside this process; remote functions run on its worker threads.

    Args:
        address: a cluster's head (``"host:port"``, as ``atoll start --head`` prints it): this
            process becomes a driver of that cluster. Remote functions and actors run in Python
            worker processes on its nodes (their code travels by cloudpickle, by value unless its
            module is installed; the nodes' interpreter needs atoll and the packages the code
            imports); C++ functions of ``cpp_module`` run through ``atoll.cpp_function``.
            ``None``: the embedded runtime.
        num_cpus: CPUs the node offers (default: this machine's hardware threads). A task
            takes one by default, so this bounds how many run at once.
        num_gpus, gpu_model: GPUs the node offers and their model (label ``gpu_model``).
        resources: custom resources, e.g. ``{"disk": 2}``.
        labels: node labels for label selectors (every node also has ``island=local``).
        object_store_memory: bytes for the object store (default: half of physical memory).
        infeasible_timeout: seconds a task that no node can run waits before InfeasibleError
            (embedded runtime; a cluster's head sets its own).
        ignore_reinit_error: return quietly when atoll is already initialized.
        token: the cluster token (with ``address``; default: ``$ATOLL_TOKEN``).
        cpp_module: ``(library path, module name)`` of a C++ job module (a shared library built
            with ``ATOLL_MODULE(name, reg)``) whose functions ``atoll.cpp_function`` calls (on a
            cluster, nodes fetch it too).

    Raises:
        AtollError: already initialized (unless ``ignore_reinit_error``), bad options, or a
            ``cpp_module`` that cannot be loaded (the message says why).
        UnsupportedOptionError: node options with an ``address``.
        AtollError: the cluster could not be reached or refused the token (the message says
            which).

    Example::

        import atoll
        atoll.init(num_cpus=4)
    """
    global _current, _atexit_registered
    if address is None and token is not None:
        raise UnsupportedOptionError("token is for a cluster: give address too")
    with _init_lock:
        if _current is not None or _worker_connect is not None:  # a cluster's worker is, too
            if ignore_reinit_error:
                return
            raise AtollError(
                "atoll is already initialized; call atoll.shutdown() first or pass "
                "ignore_reinit_error=True",
                "invalid_argument",
            )
        if address is not None:
            _current = Runtime(_connect(address, token, cpp_module, node_options=(
                num_cpus, num_gpus, gpu_model, resources, labels, object_store_memory)))
            if not _atexit_registered:
                atexit.register(shutdown)
                _atexit_registered = True
            return
        node = _core.NodeOptions()
        if num_cpus is not None:
            node.num_cpus = float(num_cpus)
        if num_gpus is not None:
            node.num_gpus = float(num_gpus)
        if gpu_model is not None:
            node.gpu_model = gpu_model
        if resources:
            node.resources = {str(k): float(v) for k, v in resources.items()}
        if labels:
            node.labels = {str(k): str(v) for k, v in labels.items()}
        explicit = any(v is not None for v in (num_cpus, num_gpus, gpu_model, resources, labels))
        core = _core.Runtime(
            [node] if explicit else [],
            int(object_store_memory or 0),
            float(infeasible_timeout),
            _worker,
        )
        if cpp_module is not None:
            try:
                path, name = cpp_module
            except (TypeError, ValueError):
                core.shutdown()
                raise TypeError("cpp_module takes (library path, module name)") from None
            try:
                core.load_cpp_module(str(path), str(name))
            except BaseException:
                core.shutdown()
                raise
        _current = Runtime(core)
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True


def _connect(address: str, token: Optional[str], cpp_module: Any, node_options: tuple) -> Any:
    if any(v is not None for v in node_options):
        raise UnsupportedOptionError(
            "num_cpus, num_gpus, gpu_model, resources, labels and object_store_memory describe "
            "the embedded runtime's node; a cluster's nodes declare their own (atoll start)"
        )
    path, name = "", ""
    if cpp_module is not None:
        try:
            path, name = cpp_module
        except (TypeError, ValueError):
            raise TypeError("cpp_module takes (library path, module name)") from None
    return _core.Runtime(str(address), token or "", str(path), str(name), "", _worker)


def shutdown() -> None:
    """Stops the runtime: queued and running work fails with RuntimeShutdownError.

    Values already read stay usable (arrays read from the store keep its memory alive). Calling
    it when atoll is not initialized does nothing. ``atoll.init`` may be called again afterwards.
    """
    global _current
    with _init_lock:
        rt, _current = _current, None
    if rt is not None:
        rt.core.shutdown()


def is_initialized() -> bool:
    """True between atoll.init and atoll.shutdown, and always in a cluster's Python worker (whose
    calls go to its cluster)."""
    return _current is not None or _worker_connect is not None


def _attach_worker(connect: Optional[Callable[[], Any]]) -> None:
    """Called by a node's Python worker (atoll._node_worker) with the connector of its cluster
    runtime before it serves calls, and with None once it is done."""
    global _worker_connect, _current
    with _init_lock:
        _worker_connect = connect
        if connect is None:
            _current = None  # borrowed: the worker loop shuts it down


def current() -> Runtime:
    """The current runtime, started with default options on first use (as Ray does)."""
    global _current
    rt = _current
    if rt is None and _worker_connect is not None:
        with _init_lock:
            if _current is None and _worker_connect is not None:
                _current = Runtime(_worker_connect())
            rt = _current
    if rt is None:
        init(ignore_reinit_error=True)
        rt = _current
        if rt is None:
            raise RuntimeShutdownError("atoll was shut down while starting")
    return rt


def _check_refs(refs: Sequence[Any], what: str) -> List[Any]:
    out = list(refs)
    for r in out:
        if type(r) is not ObjectRef:
            raise TypeError(f"{what} takes ObjectRefs, got {type(r).__name__}")
    return out


@overload
def get(refs: ObjectRef, *, timeout: Optional[float] = None) -> Any: ...
@overload
def get(refs: Sequence[ObjectRef], *, timeout: Optional[float] = None) -> List[Any]: ...


def get(refs: Union[ObjectRef, Sequence[ObjectRef]], *, timeout: Optional[float] = None) -> Any:
    """The value of an ObjectRef, or the values of a list of them, waiting as needed.

    Args:
        refs: one ObjectRef or a list/tuple of them.
        timeout: seconds to wait for all of them; ``None`` waits forever.

    Raises:
        TaskError: the task raised (an instance of the original exception class too, when
            possible), with ``remote_traceback``.
        GetTimeoutError: the timeout passed first (the value may still arrive).
        ActorDiedError, TaskCancelledError, InfeasibleError, RuntimeShutdownError.

    The GIL is released while waiting. Arrays come back as read-only views of the object
    store's memory, without a copy.
    """
    rt = current()
    if type(refs) is ObjectRef:
        return rt.core.get([refs], timeout)[0]
    if isinstance(refs, (list, tuple)):
        return rt.core.get(_check_refs(refs, "atoll.get"), timeout)
    raise TypeError(f"atoll.get takes an ObjectRef or a list of them, got {type(refs).__name__}")


def wait(
    refs: Sequence[ObjectRef], *, num_returns: int = 1, timeout: Optional[float] = None
) -> Tuple[List[ObjectRef], List[ObjectRef]]:
    """Waits until ``num_returns`` of ``refs`` are ready (a value or an error) or the timeout.

    Returns:
        ``(ready, not_ready)``: at most ``num_returns`` ready refs, and the rest, each in the
        order of ``refs``.

    Raises:
        ValueError: ``num_returns`` is larger than ``len(refs)`` or negative.
    """
    if type(refs) is ObjectRef or not isinstance(refs, (list, tuple)):
        raise TypeError("atoll.wait takes a list of ObjectRefs")
    refs = _check_refs(refs, "atoll.wait")
    if num_returns < 0 or num_returns > len(refs):
        raise ValueError(f"num_returns ({num_returns}) must be between 0 and len(refs) ({len(refs)})")
    flags = current().core.wait(refs, num_returns, timeout)
    ready = [r for r, f in zip(refs, flags) if f]
    not_ready = [r for r, f in zip(refs, flags) if not f]
    return ready, not_ready


def put(value: Any) -> ObjectRef:
    """Stores ``value`` in the object store and returns an ObjectRef to it.

    numpy arrays (and large bytes, bytearray, memoryview values) are copied once into the store
    and read back without a copy. An ObjectRef or actor handle inside ``value`` is not supported
    yet.

    Raises:
        SerializationError: the value cannot be pickled.
        ObjectStoreFullError: no room for it.
    """
    if type(value) is ObjectRef:
        raise TypeError("atoll.put of an ObjectRef: pass the ObjectRef itself instead")
    stream, buffers = _serialization.encode_value(value)
    return current().core.put(stream, buffers)


def cancel(ref: ObjectRef, *, force: bool = False) -> bool:
    """Cancels the task behind ``ref`` if it has not finished.

    A queued task never runs; a running one finishes but its result is dropped. ``get`` then
    raises TaskCancelledError. Returns False when the object already had a value or error.
    ``force=True`` (killing the worker) is not supported: Python tasks run on threads.
    """
    if force:
        raise UnsupportedOptionError("cancel(force=True) is not supported: tasks run on threads")
    if type(ref) is not ObjectRef:
        raise TypeError("atoll.cancel takes an ObjectRef")
    return current().core.cancel(ref)


def kill(actor: Any, *, no_restart: bool = True) -> None:
    """Ends an actor now: queued and later calls raise ActorDiedError, its name is free again.

    The call running when it is killed finishes, but its caller gets ActorDiedError.
    """
    from atoll.actor import ActorHandle

    if not isinstance(actor, ActorHandle):
        raise TypeError("atoll.kill takes an actor handle")
    current().core.kill(actor._token)


def get_actor(name: str) -> Any:
    """The live actor created with ``.options(name=name)``: an ActorHandle for a Python class, a
    CppActorHandle for a C++ one (``atoll.cpp_actor``).

    Raises:
        ValueError: no live actor has that name.
    """
    from atoll.actor import ActorHandle

    token = current().core.get_actor(name)
    if token is None:
        raise ValueError(f"no live actor is named '{name}'")
    if token.is_python:
        return ActorHandle(token)
    from atoll.cpp import CppActorHandle

    return CppActorHandle(token)


def stats() -> Dict[str, int]:
    """Counters of the current runtime: objects, bytes, tasks, actors, worker threads."""
    return current().core.stats()
