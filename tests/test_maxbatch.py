"""maxbatch: the search from a start size, one progress line per probe, and the fast engine's
cheap probes (short prompts in the full-size cache) confirmed with the full prompts."""

from __future__ import annotations

import pytest
import torch

from infercomp.maxbatch import _confirm, print_progress, search_max_batch


def test_search_from_a_start_size_above_and_below_the_answer():
    seen = []
    best, trials = search_max_batch(lambda n: n <= 37, 200, start=200, progress=lambda *a: seen.append(a))
    assert best == 37
    assert trials[0] == (200, False) and (37, True) in trials and (38, False) in trials
    assert len(trials) <= 16  # about 2 log2(start - answer)
    assert len(search_max_batch(lambda n: n <= 210, 256, start=225)[1]) <= 9  # near the answer: few probes
    assert [(n, ok) for n, ok, _, _ in seen] == trials  # one progress call per probe, in order
    assert all(s >= 0 for _, _, s, _ in seen)
    best, trials = search_max_batch(lambda n: n <= 37, 200, start=30)
    assert best == 37 and trials[:2] == [(30, True), (60, False)]
    assert search_max_batch(lambda n: n <= 200, 200, start=200) == (200, [(200, True)])
    assert search_max_batch(lambda n: False, 50, start=50)[0] == 0
    # The default start (one row) keeps the doubling search
    assert search_max_batch(lambda n: n <= 5, 256)[1][:4] == [(1, True), (2, True), (4, True), (8, False)]


def test_progress_line_is_one_flushed_line_on_stderr(capsys):
    print_progress(12, False, 3.25, "")
    print_progress(11, True, 1.0, " [full prompts]")
    err = capsys.readouterr().err.splitlines()
    assert err == ["maxbatch: batch    12: out of memory (3.2 s)", "maxbatch: batch    11: fits (1.0 s) [full prompts]"]


def test_confirm_steps_down_and_says_when_it_could_not():
    quiet = lambda *a: None  # noqa: E731
    assert _confirm(lambda n: n <= 97, 100, quiet) == (97, True, [(100, False), (97, True)])
    best, ok, checks = _confirm(lambda n: n <= 50, 100, quiet)
    assert (best, ok) == (100, False) and len(checks) == 3


@pytest.mark.slow
def test_short_prompt_probes_then_full_prompt_confirmation(monkeypatch):
    """On the fast engine, probes read prompts cut to probe_tokens while the cache keeps the
    slots of the full prompts; the size found is run once with the full prompts."""
    from infercomp.config import load_config
    from infercomp.fast import engine as fast_engine_module
    from infercomp.fast import kvcache
    from infercomp.fast.engine import FastEngine
    from infercomp.maxbatch import find_max_batch
    from infercomp.texts import long_prompt

    def limited(shape, rows, *args):
        if rows > 3:
            raise torch.OutOfMemoryError("test: more than 3 rows")
        return kvcache.make_cache(shape, rows, *args)

    lengths, slots = [], []
    real = FastEngine._prompts

    def spy(self, indices):
        out = real(self, indices)
        lengths.append(max(len(p) for p in out))
        slots.append(self.cap.slots)
        return out

    monkeypatch.setattr(fast_engine_module, "make_cache", limited)
    monkeypatch.setattr(FastEngine, "_prompts", spy)
    cfg = load_config(
        "example",
        embedded=True,
        overrides=dict(
            prompts=[long_prompt(11, 700)],
            batch_size=1,
            num_completions=1,
            max_new_tokens=2,
            dtype="float32",
            engine="fast",
        ),
    )
    lines = []
    found = find_max_batch(cfg, "batched", 8, probe_tokens=512, progress=lambda *a: lines.append(a))
    assert found["max_batch_size"] == 3 and found["confirmed_with_full_prompts"] is True
    assert found["full_prompt_trials"] == [(3, True)]
    full = lengths[-1]
    assert full > 600 and all(n <= 520 for n in lengths[:-1])  # probes short, the check full
    assert len(set(slots)) == 1 and slots[0] >= full  # one cache length, sized for the full prompts
    assert len(lines) == len(found["trials"]) + 1 and lines[-1][3] == " [full prompts]"


def test_probe_tokens_needs_the_fast_engine_and_a_long_prefill():
    from infercomp.config import ConfigError, load_config
    from infercomp.maxbatch import find_max_batch

    cfg = load_config("example", embedded=True, overrides=dict(max_new_tokens=2, dtype="float32", engine="fast"))
    with pytest.raises(ConfigError, match="at least 512"):
        find_max_batch(cfg, "batched", 2, probe_tokens=64)


def test_cache_bound_from_the_measured_cache_and_free_memory(monkeypatch):
    """The search's start on CUDA: the rows whose cache alone fills the free memory plus the
    cache already held (after the allocator's cached blocks are released)."""
    from types import SimpleNamespace

    from infercomp.maxbatch import _cache_bound

    freed = []
    engine = SimpleNamespace(
        ensure_rows=None,
        settings=SimpleNamespace(device="cuda:0"),
        kv_kind="int8",
        cap=SimpleNamespace(rows=16),
        device="cuda:0",
        kv_cache_bytes=lambda: 16 * 100,
        free=lambda: freed.append(1),
    )
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (1050, 10**6))
    assert _cache_bound(engine) == (100, 26) and freed == [1]  # (1050 + 1600) // 100
    engine.kv_kind = "offloaded"  # host memory: no device bound
    assert _cache_bound(engine) == (None, None)
    engine.kv_kind, engine.settings.device = "int8", "cpu"
    assert _cache_bound(engine) == (None, None)
