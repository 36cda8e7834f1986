"""The inference methods, one module each, registered by name (`registry.py`).

Importing this package loads no model and no torch: a method describes how it batches, what it
asks of generation and how one planned call runs on the engine handed to it at run time.

A new method is one module here (a `Method`, or a subclass overriding `run_call` and friends)
that calls `register(...)` on import, plus its import line below.
"""

from __future__ import annotations

from infercomp.methods.base import Method
from infercomp.methods.registry import BASE_METHODS, all_methods, get_method, method_names, register

__all__ = ["BASE_METHODS", "Method", "all_methods", "get_method", "method_names", "register"]

# Registration happens on import; the order here is the order `infercomp methods` lists, and
# the speculative variants are derived from the base methods, so they come last.
# isort: off
from infercomp.methods import standard, batched, beam_search, nucleus_sampling  # noqa: E402,F401
from infercomp.methods import speculative  # noqa: E402,F401
# isort: on
