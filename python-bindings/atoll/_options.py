"""Options of remote functions and actors, checked once and turned into the core's option types."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from atoll import _core
from atoll.exceptions import UnsupportedOptionError

TASK_OPTIONS = frozenset(
    {"num_cpus", "num_gpus", "memory", "resources", "label_selector", "labels", "max_retries",
     "retry_exceptions", "name"}
)
ACTOR_OPTIONS = frozenset(
    {"num_cpus", "num_gpus", "memory", "resources", "label_selector", "labels", "max_concurrency",
     "name", "max_restarts", "max_task_retries"}
)
# Options Ray users will reach for that atoll's runtime does not have (yet): a clear refusal
# rather than a silent difference.
_NOT_YET = {
    "num_returns": "tasks return one value",
    "scheduling_strategy": "use label_selector and resources",
    "placement_group": "atoll has no placement groups: place work by label_selector and resources",
    "runtime_env": "atoll has no runtime environments: code runs in the driver's process "
    "(embedded) or in the nodes' Python (atoll start --python)",
    "lifetime": "a named actor already lives until atoll.kill or shutdown",
    "namespace": "atoll has no namespaces: an actor's name is unique in the whole runtime",
    "accelerator_type": "use label_selector={'gpu_model': ...}",
    "concurrency_groups": "use max_concurrency",
}


def check(options: Mapping[str, Any], allowed: frozenset, what: str) -> Dict[str, Any]:
    for key in options:
        if key in allowed:
            continue
        if key in _NOT_YET:
            raise UnsupportedOptionError(f"{what} option '{key}' is not supported: {_NOT_YET[key]}")
        raise UnsupportedOptionError(
            f"unknown {what} option '{key}'; the options are: {', '.join(sorted(allowed))}"
        )
    restarts = options.get("max_restarts")
    if restarts is not None and (isinstance(restarts, bool) or not isinstance(restarts, int)
                                 or restarts < -1):
        raise UnsupportedOptionError("max_restarts takes an int: -1 (always), 0 or more")
    if options.get("max_task_retries", 0) not in (0, None):
        raise UnsupportedOptionError("actor option 'max_task_retries' is not supported yet")
    retry = options.get("retry_exceptions", False)
    if not isinstance(retry, bool):
        raise UnsupportedOptionError(
            "retry_exceptions takes True or False (a list of exception types is not supported yet)"
        )
    return dict(options)


def _selectors(spec: Optional[Mapping[str, Any]]) -> list:
    out = []
    for key, value in (spec or {}).items():
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, (list, tuple, set, frozenset)):
            values = [str(v) for v in value]
        else:
            raise UnsupportedOptionError(
                f"label_selector['{key}'] takes a string or a list of strings, not {value!r}"
            )
        out.append(_core.LabelSelector(key, _core.LabelSelector.Op.in_, values))
    return out


def _common(o: Any, options: Mapping[str, Any]) -> None:
    if "name" in options and options["name"] is not None:
        o.name = str(options["name"])
    if options.get("num_cpus") is not None:
        o.num_cpus = float(options["num_cpus"])
    if options.get("num_gpus") is not None:
        o.num_gpus = float(options["num_gpus"])
    if options.get("memory") is not None:
        o.memory = int(options["memory"])
    if options.get("resources"):
        o.resources = {str(k): float(v) for k, v in options["resources"].items()}
    if options.get("label_selector") and options.get("labels"):
        raise UnsupportedOptionError("give label_selector or labels (the same option), not both")
    selector = options.get("label_selector") or options.get("labels")
    if selector:
        o.label_selector = _selectors(selector)


def task_options(options: Mapping[str, Any]) -> Optional[Any]:
    """A _core.TaskOptions, or None for the defaults (the core's fast path)."""
    if not options:
        return None
    o = _core.TaskOptions()
    _common(o, options)
    if options.get("max_retries") is not None:
        o.max_retries = int(options["max_retries"])
    o.retry_exceptions = bool(options.get("retry_exceptions", False))
    return o


def actor_options(options: Mapping[str, Any]) -> Any:
    o = _core.ActorOptions()
    _common(o, options)
    if options.get("max_concurrency") is not None:
        o.max_concurrency = int(options["max_concurrency"])
    if options.get("max_restarts") is not None:
        o.max_restarts = int(options["max_restarts"])
    return o
