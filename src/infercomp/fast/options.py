"""The generation settings the fast engine runs, as its device-side Choice, and a stated refusal
of any other (a setting it ignored would time a different method than the one named)."""

from __future__ import annotations

import os
from typing import Any

from infercomp.fast.sampling import Choice

# generate() keywords the fast engine implements: greedy, sampling (temperature, top-k, top-p)
# and beam search.
RUNS = ("do_sample", "temperature", "top_p", "top_k", "num_beams", "num_return_sequences")


def unsupported_reason(kwargs: dict[str, Any]) -> str | None:
    """Why the fast engine cannot run these generation settings, or None."""
    other = sorted(k for k in kwargs if k not in RUNS)
    if not other:
        return None
    return (
        f"the fast engine does not implement the generation setting(s) {', '.join(other)}; "
        f"it runs {', '.join(RUNS)}. Run with engine 'transformers' for this method"
    )


def choice_of(kwargs: dict[str, Any], compiled: bool) -> Choice:
    """The device-side choice of these settings; `compiled`: the steps run compiled.

    The warping and draw are not compiled whole unless INFERCOMP_FAST_COMPILE_SAMPLING=1: compiled
    into one function they cost more, not less (nucleus over greedy at 32 rows, two H100 machines:
    +0.62 ms of device time per step compiled, +0.43 ms eager; docs/measurements/2026-11-27-h100-gemv
    and -profiles-2). Compiled steps compile only the softmax before a top-p draw
    (`steps_compiled`; fast.sampling.choose)."""
    if not kwargs.get("do_sample", False):
        return Choice(do_sample=False)
    return Choice(
        do_sample=True,
        temperature=float(kwargs.get("temperature", 1.0)),
        top_k=int(kwargs.get("top_k", 0) or 0),
        top_p=float(kwargs.get("top_p", 1.0)),
        compiled=compiled and os.environ.get("INFERCOMP_FAST_COMPILE_SAMPLING", "0") == "1",
        steps_compiled=compiled,
    )
