"""The method registry: name -> Method, in registration order. `get_method` is the one place a
method is chosen by name; config validation, the plan and the run all ask here."""

from __future__ import annotations

from infercomp.methods.base import Method

_REGISTRY: dict[str, Method] = {}

# The four base methods, in the order runs and reports show them.
BASE_METHODS = ("standard", "batched", "beam_search", "nucleus_sampling")


def register(method: Method) -> Method:
    """Add a method under its name (one module per method calls this once, on import)."""
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    _REGISTRY[method.name] = method
    return method


def unregister(name: str) -> None:
    """Remove a method (for tests that register a method of their own)."""
    _REGISTRY.pop(name, None)


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(_REGISTRY)}") from None


def method_names() -> list[str]:
    return list(_REGISTRY)


def all_methods() -> list[Method]:
    return list(_REGISTRY.values())
