"""Statistics over repeats: robust summaries and a bootstrap interval for speedups."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence


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
    numerator: Sequence[float], denominator: Sequence[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Ratio of medians with a 95 % percentile-bootstrap interval, resampling each side's repeats.

    With few repeats the interval is coarse (it cannot be wider than the samples allow); it still
    shows when two methods' spreads overlap.
    """
    value = statistics.median(numerator) / statistics.median(denominator)
    rng = random.Random(seed)
    ratios = []
    for _ in range(resamples):
        a = [rng.choice(numerator) for _ in numerator]
        b = [rng.choice(denominator) for _ in denominator]
        ratios.append(statistics.median(a) / statistics.median(b))
    return value, (percentile(ratios, 2.5), percentile(ratios, 97.5))
