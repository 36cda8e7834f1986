"""Statistics over repeats: robust summaries, and a speedup with the interval its data supports.

A speedup is a ratio of median tokens/s. How sure we are of it depends on how many repeats
there are: with fewer than CI_MIN_REPEATS a side, a bootstrap "95 % interval" is just the range
of the few ratios the data allows (with three repeats it is exactly [min a / max b, max a / min b],
and covers the true ratio far less often than 95 %), so it is reported as a range and called
one. From CI_MIN_REPEATS on, a percentile bootstrap interval is reported, naming the method.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

CI_MIN_REPEATS = 10


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]), as numpy's default."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def describe(values: Sequence[float]) -> dict[str, float | None]:
    """median, p90, min, max and coefficient of variation (stdev / mean) of raw samples."""
    if not values:
        return {"median": None, "p90": None, "min": None, "max": None, "cv": None}
    m = statistics.fmean(values)
    cv = statistics.stdev(values) / m if len(values) > 1 and m else 0.0
    return {"median": median(values), "p90": percentile(values, 90), "min": min(values), "max": max(values), "cv": cv}


def bootstrap_ratio(
    numerator: Sequence[float],
    denominator: Sequence[float],
    resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, tuple[float, float]]:
    """Ratio of medians with a percentile-bootstrap interval, resampling each side's repeats
    independently. Meaningful only with enough repeats (see speedup_interval)."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    value = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), (resamples, len(a)))  # (resamples, repeats) indices
    ib = rng.integers(0, len(b), (resamples, len(b)))
    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return value, (float(lo), float(hi))


def speedup_interval(
    numerator: Sequence[float], denominator: Sequence[float], same_process: bool = True
) -> tuple[float, tuple[float, float], str]:
    """(ratio of medians, interval, what the interval is) for tokens/s over a baseline's."""
    n = min(len(numerator), len(denominator))
    if n < CI_MIN_REPEATS:
        value = statistics.median(numerator) / statistics.median(denominator)
        lo, hi = min(numerator) / max(denominator), max(numerator) / min(denominator)
        return value, (lo, hi), f"range over {n} repeats (min/max ratio; too few repeats for a confidence interval)"
    value, interval = bootstrap_ratio(numerator, denominator)
    kind = f"bootstrap percentile 95 % CI over {n} repeats"
    if same_process:
        kind += " (repeats in one process: variation between processes is not sampled)"
    return value, interval, kind
