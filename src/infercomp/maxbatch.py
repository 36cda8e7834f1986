"""The largest batch a method runs without running out of memory: galloping from a start size,
then bisection.

Every probe is one real call of the method at that batch size on one loaded engine (no reload
between probes) and prints one line as it finishes (batch size, fits or not, seconds), flushed
to stderr, so a search cut short by a time limit still leaves its trials.

On the fast engine on CUDA the search starts where the KV cache alone would fill the free device
memory (its bytes per row are measured on the allocated cache): larger batches cannot allocate
it, so that size is also the search's upper bound, and the search needs a few probes near the
answer instead of doubling up from one row. `probe_tokens` (fast engine only) feeds the probes
prompts cut to that many tokens while the cache keeps the slots sized for the full prompts: a
probe then allocates the same cache, and its decode steps attend over all of its slots as a
step of the full call does (captured steps always do; eager CUDA steps too), while its prefill,
in row groups of about `runtime.PREFILL_TOKENS` tokens whatever the prompt length, holds the same
working memory for a fraction of the time. The size found is then run once with the full prompts
(`confirmed`), stepping down if that does not fit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from infercomp.config import Config, ConfigError
from infercomp.methods import get_method

Progress = Callable[[int, bool, float, str], None]  # (batch, fits, seconds, what kind of probe)


def print_progress(n: int, ok: bool, seconds: float, what: str) -> None:
    print(
        f"maxbatch: batch {n:5d}: {'fits' if ok else 'out of memory'} ({seconds:.1f} s){what}",
        file=sys.stderr,
        flush=True,
    )


def search_max_batch(
    fits: Callable[[int], bool], limit: int, start: int = 1, progress: Progress | None = None
) -> tuple[int, list[tuple[int, bool]]]:
    """Largest n <= limit with fits(n), assuming fits is monotone (true up to some n, then false).
    From `start`: doubling up while it fits, or stepping down by 1, 2, 4, ... rows while it does
    not; then bisection between the largest size that fit and the smallest that did not.

    Returns (n, trials); n is 0 when even a batch of one does not fit."""
    trials: list[tuple[int, bool]] = []

    def probe(n: int) -> bool:
        return _timed(fits, n, trials, progress, "")

    n = min(max(start, 1), limit)
    good, bad = 0, None
    if probe(n):
        good = n
        while good < limit:
            n = min(good * 2, limit)
            if not probe(n):
                bad = n
                break
            good = n
        if bad is None:
            return good, trials
    else:
        bad, step = n, 1
        while bad > 1:
            n = max(bad - step, 1)
            if probe(n):
                good = n
                break
            bad, step = n, step * 2
    while bad - good > 1:
        mid = (good + bad) // 2
        if probe(mid):
            good = mid
        else:
            bad = mid
    return good, trials


def _timed(fits, n: int, trials: list, progress: Progress | None, what: str) -> bool:
    """One probe: fits(n), appended to `trials` and reported with its seconds."""
    t0 = time.perf_counter()
    ok = fits(n)
    trials.append((n, ok))
    if progress is not None:
        progress(n, ok, time.perf_counter() - t0, what)
    return ok


def _cache_bound(engine) -> tuple[int | None, int | None]:
    """(bytes per row of the allocated KV cache, the most rows whose cache fits the free device
    memory), or (None, None) where that does not bound the batch (CPU, reference engine,
    offloaded cache, whose rows live in host memory)."""
    import torch

    if not hasattr(engine, "ensure_rows") or not engine.settings.device.startswith("cuda"):
        return None, None
    if getattr(engine, "kv_kind", None) == "offloaded" or not engine.cap.rows:
        return None, None
    held = engine.kv_cache_bytes()
    per_row = held // engine.cap.rows
    engine.free()  # the allocator's cached blocks (loading's temporaries) back to the device
    free, _ = torch.cuda.mem_get_info(engine.device)
    return per_row, int((free + held) // per_row)


def _short_prompts(engine, tokens: int) -> list[str]:
    tok = engine.tokenizer
    return [tok.decode(tok(p)["input_ids"][:tokens]) for p in engine.config.prompts]


def find_max_batch(
    config: Config, method_name: str, limit: int, probe_tokens: int | None = None, progress: Progress | None = None
) -> dict:
    """Run one call of `method_name` at growing batch sizes (fixed length: the worst case)."""
    import torch

    from infercomp.loader import load_engine
    from infercomp.process import configure_threads

    progress = print_progress if progress is None else progress
    method = get_method(method_name)
    if method.batching != "fill":
        raise ConfigError(
            f"maxbatch: method {method_name!r} does not take a batch size; use one of: batched, "
            "nucleus_sampling (and their _speculative variants)"
        )
    if probe_tokens is not None:
        from infercomp.fast.runtime import LONG_PREFILL

        if probe_tokens < LONG_PREFILL:
            raise ConfigError(f"maxbatch: --probe-tokens must be at least {LONG_PREFILL} (a prefill in row groups)")
    config = config.model_copy(update={"fixed_length": True})
    configure_threads(config)
    started = time.perf_counter()
    engine = load_engine(config, need_assistant=method_name.endswith("_speculative"))
    load_s = time.perf_counter() - started
    if probe_tokens is not None and not hasattr(engine, "ensure_rows"):
        raise ConfigError("maxbatch: --probe-tokens needs the fast engine (its cache is sized for the full prompts)")
    full = engine.config
    probe_config = full
    if probe_tokens is not None:
        probe_config = full.model_copy(update={"prompts": _short_prompts(engine, probe_tokens)})

    def fits(n: int) -> bool:
        try:
            if hasattr(engine, "ensure_rows"):  # the fast engine sizes its cache per run: to n rows
                engine.ensure_rows(n)
            method.run_call(engine, [0] * n)
            return True
        except torch.OutOfMemoryError:
            engine.free()
            return False

    per_row, bound = _cache_bound(engine)
    top = limit if bound is None else max(1, min(limit, bound + 1))  # + 1: a cheap check of the bound
    engine.config = probe_config
    best, trials = search_max_batch(fits, top, start=top if bound is not None else 1, progress=progress)
    engine.config = full
    confirmed, checks = None, []
    if probe_tokens is not None:
        print(
            f"maxbatch: {best} rows fit with {probe_tokens}-token prompts; now the full prompts",
            file=sys.stderr,
            flush=True,
        )
        best, confirmed, checks = _confirm(fits, best, progress)
    return {
        "method": method_name,
        "max_batch_size": best,
        "limit": limit,
        "device": engine.settings.device,
        "engine": engine.settings.engine,
        "cache_implementation": engine.settings.cache_implementation,
        "kv_cache_dtype": getattr(engine, "kv_kind", None),  # the fast engine's quantized cache kind
        "kv_cache_slots": engine.cap.slots if hasattr(engine, "cap") else None,
        "kv_cache_bytes_per_row": per_row,
        "cache_bound_rows": bound,  # beyond this the cache alone exceeds the free device memory
        "max_new_tokens": config.max_new_tokens,
        "probe_prompt_tokens": probe_tokens,
        "confirmed_with_full_prompts": confirmed,
        "load_seconds": round(load_s, 1),
        "trials": trials,
        "full_prompt_trials": checks,
        "note": _note(engine, limit, bound),
    }


def _confirm(fits, best: int, progress: Progress, tries: int = 3) -> tuple[int, bool, list]:
    """Run the size found with short prompts once with the full ones; step down by about 3 %
    (at most `tries` calls) where it does not fit. Returns (size, confirmed, the calls)."""
    checks = []
    n = best
    while n > 0 and len(checks) < tries:
        if _timed(fits, n, checks, progress, " [full prompts]"):
            return n, True, checks
        n -= max(1, n // 32)
    return best, False, checks  # not confirmed: the short-prompt result, marked so


def _note(engine, limit: int, bound: int | None) -> str | None:
    if not engine.settings.device.startswith("cuda"):
        return f"on CPU running out of RAM is not caught: the search stops at --limit {limit}"
    if bound is not None and bound + 1 < limit:
        return f"searched up to {bound + 1} rows: the KV cache alone of {bound + 1} rows exceeds the free device memory"
    return None
