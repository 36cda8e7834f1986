"""Exceptions as the one line a user reads: in a failed method's reason, a load error."""

from __future__ import annotations

OOM_REMEDIES = (
    "out of memory: try use_quantization, cache_implementation 'offloaded', a smaller batch_size "
    "or fewer max_new_tokens"
)


class SettingError(ValueError):
    """A bad INFERCOMP_* environment variable: the message names it and what it takes."""


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
