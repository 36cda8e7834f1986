"""Where the fast engine's Triton kernels come from: their modules import Triton, which CPU builds
of torch do not bring, so each is imported on first use and a missing Triton means "no kernel"."""

from __future__ import annotations

import importlib


def kernel_or_false(module: str, name: str | None = None):
    """`name` from `module` (or the module itself when name is None), or False where Triton is not
    installed: the value a module's cache slot holds (None there means "not looked up yet")."""
    try:
        found = importlib.import_module(module)
    except ImportError:
        return False
    return found if name is None else getattr(found, name)
