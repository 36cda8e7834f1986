"""Exceptions as the one line a user reads: in a failed method's reason, a load error."""

from __future__ import annotations

import os

OOM_REMEDIES = (
    "out of memory: try use_quantization, cache_implementation 'offloaded', a smaller batch_size "
    "or fewer max_new_tokens"
)


class SettingError(ValueError):
    """A bad INFERCOMP_* environment variable: the message names it and what it takes."""


def whole_number_setting(name: str, default: int, unit: str, zero: str) -> int:
    """The environment variable `name` as a whole number of `unit` (`default` where unset); what
    0 means is `zero`. Anything else is a SettingError naming the variable."""
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise SettingError(f"{name}={value!r}: expected a whole number of {unit} (0: {zero})")
    return int(value)


def one_line(exc: BaseException, limit: int = 400) -> str:
    """The exception as one line: every line of its message joined, so none is cut mid-sentence."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(exc).__name__}: {text}"


def failure_reason(exc: BaseException) -> str:
    """Why a method failed: the first line of the exception, with what to try on out of memory."""
    text = str(exc).strip().splitlines()
    first = f"{type(exc).__name__}: {text[0] if text else ''}"
    if "out of memory" in first.lower() or type(exc).__name__ == "OutOfMemoryError":
        return f"{first} ({OOM_REMEDIES})"
    return first
