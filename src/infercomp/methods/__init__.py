"""The inference methods, one module each, registered by name; `get_method` is the one place a
method is chosen.

Importing this package loads no model and no torch: a method describes how it batches and what
it asks of generation; the engine that runs it is handed in at run time.
"""

from __future__ import annotations

from infercomp.methods.base import Method

_REGISTRY: dict[str, Method] = {}

# The seed's four methods, in the order runs and reports show them.
BASE_METHODS = ("standard", "batched", "beam_search", "nucleus_sampling")


def register(method: Method) -> Method:
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is registered twice")
    _REGISTRY[method.name] = method
    return method


def get_method(name: str) -> Method:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(_REGISTRY)}") from None


def method_names() -> list[str]:
    return list(_REGISTRY)


def all_methods() -> list[Method]:
    return list(_REGISTRY.values())


# Registration happens on import; the order here is the order `infercomp methods` lists, and
# the speculative variants are derived from the base methods, so they come last.
# isort: off
from infercomp.methods import standard, batched, beam_search, nucleus_sampling  # noqa: E402,F401
from infercomp.methods import speculative  # noqa: E402,F401
# isort: on
