"""The largest batch a method runs without running out of memory: doubling, then bisection."""

from __future__ import annotations

from collections.abc import Callable

from infercomp.config import Config, ConfigError
from infercomp.methods import get_method


def search_max_batch(fits: Callable[[int], bool], limit: int) -> tuple[int, list[tuple[int, bool]]]:
    """Largest n <= limit with fits(n), assuming fits is monotone (true up to some n, then false).

    Returns (n, trials); n is 0 when even a batch of one does not fit.
    """
    trials: list[tuple[int, bool]] = []

    def probe(n: int) -> bool:
        ok = fits(n)
        trials.append((n, ok))
        return ok

    good, bad, n = 0, None, 1
    while n <= limit:
        if probe(n):
            good, n = n, n * 2
        else:
            bad = n
            break
    if bad is None:
        if good < limit and probe(limit):
            return limit, trials
        bad = min(limit + 1, good * 2) if good else 1
    while bad - good > 1:
        mid = (good + bad) // 2
        if probe(mid):
            good = mid
        else:
            bad = mid
    return good, trials


def find_max_batch(config: Config, method_name: str, limit: int) -> dict:
    """Run one call of `method_name` at growing batch sizes (fixed length: the worst case)."""
    import torch

    from infercomp.loader import load_engine
    from infercomp.process import configure_threads

    method = get_method(method_name)
    if method.batching != "fill":
        raise ConfigError(
            f"maxbatch: method {method_name!r} does not take a batch size; use one of: batched, "
            "nucleus_sampling (and their _speculative variants)"
        )
    config = config.model_copy(update={"fixed_length": True})
    configure_threads(config)
    engine = load_engine(config, need_assistant=method_name.endswith("_speculative"))

    def fits(n: int) -> bool:
        try:
            if hasattr(engine, "ensure_rows"):  # the fast engine sizes its cache per run: to n rows
                engine.ensure_rows(n)
            method.run_call(engine, [0] * n)
            return True
        except torch.OutOfMemoryError:
            engine.free()
            return False

    best, trials = search_max_batch(fits, limit)
    note = None
    if not engine.settings.device.startswith("cuda"):
        note = f"on CPU running out of RAM is not caught: the search stops at --limit {limit}"
    return {
        "method": method_name,
        "max_batch_size": best,
        "limit": limit,
        "device": engine.settings.device,
        "engine": engine.settings.engine,
        "cache_implementation": engine.settings.cache_implementation,
        "kv_cache_dtype": getattr(engine, "kv_kind", None),  # the fast engine's quantized cache kind
        "max_new_tokens": config.max_new_tokens,
        "trials": trials,
        "note": note,
    }
