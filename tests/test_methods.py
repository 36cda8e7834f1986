"""Methods on the embedded pair: counts, greedy equality with plain generate(), token counting,
and failure isolation."""

from __future__ import annotations

import torch
from tests.conftest import PROMPTS

from infercomp.measure.timing import count_new_tokens

COUNTS = [2, 1, 3]


def reference_greedy(tok, model, prompt: str, max_new_tokens: int) -> list[int]:
    """Plain transformers greedy decoding of one prompt, no padding: the reference path."""
    ids = tok(prompt, return_tensors="pt").input_ids
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )
    new = out[0, ids.shape[1] :].tolist()
    n, _ = count_new_tokens(new, {tok.eos_token_id}, fixed_length=False)
    return new[:n]


def test_every_method_returns_the_planned_completions(greedy_run):
    results, _ = greedy_run
    for name, m in results.methods.items():
        if name == "beam_search_speculative":
            assert m.speculation_note.startswith("not applicable") and m.speculative is None
        assert m.status == "ok", (name, m.reason)
        per_prompt = [sum(1 for c in m.completions if c.prompt_index == p) for p in range(3)]
        assert per_prompt == COUNTS, name
        indices = sorted((c.prompt_index, c.completion_index) for c in m.completions)
        assert indices == [(p, i) for p, n in enumerate(COUNTS) for i in range(n)], name


def test_greedy_methods_match_plain_generate_token_for_token(greedy_run, embedded_pair):
    results, _ = greedy_run
    tok, main, _ = embedded_pair
    reference = [reference_greedy(tok, main, p, 24) for p in PROMPTS]
    for name in ("standard", "batched", "standard_speculative", "batched_speculative"):
        for c in results.methods[name].completions:
            expected = reference[c.prompt_index]
            assert c.new_tokens == len(expected), (name, c.prompt_index)
            assert c.text == tok.decode(expected, skip_special_tokens=True), (name, c.prompt_index)


def test_summary_adds_up(greedy_run):
    results, _ = greedy_run
    s = results.methods["batched"].summary
    comps = results.methods["batched"].completions
    assert s.completions == 6 and s.calls == 2  # [0,0,1,2] and [2,2] at batch_size 4
    assert s.new_tokens == sum(c.new_tokens for c in comps)
    assert s.tokens_per_second_runs == [s.new_tokens / t for t in s.total_time_s_runs]
    assert s.peak_memory_gb > 0 and s.memory_kind == "process_rss"
    assert results.methods["batched_speculative"].execution == "speculative, batched"


def test_count_new_tokens_stops_at_first_eos_and_ignores_padding():
    eos, pad = 0, 1
    assert count_new_tokens([5, 6, eos, pad, pad], {eos}, fixed_length=False) == (3, "eos")
    assert count_new_tokens([5, 6, 7], {eos}, fixed_length=False) == (3, "length")
    assert count_new_tokens([5, eos, 7], {eos}, fixed_length=True) == (3, "length")


def test_padding_rows_count_only_their_own_tokens(embedded_pair, tmp_path):
    """In a batch, a row that ends early is padded; its count must equal its unbatched count."""
    from infercomp.config import load_config
    from infercomp.runner import run_experiment

    tok, main, _ = embedded_pair
    # A short budget after "The end." style endings: stories stop with EOS well before 400.
    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "prompts": ["Once upon a time", "generate short bed time story containing word dog and sausage"],
            "num_completions": 1,
            "max_new_tokens": 400,
            "temperature": 0.0,
            "methods_to_test": ["batched"],
            "warmup_runs": 0,
            "repeats": 1,
        },
    )
    res = run_experiment(cfg, tmp_path).methods["batched"]
    for c in res.completions:
        expected = reference_greedy(tok, main, cfg.prompts[c.prompt_index], 400)
        assert c.new_tokens == len(expected)
    assert any(c.finish == "eos" for c in res.completions)
    assert len({c.new_tokens for c in res.completions}) == 2  # different lengths in one batch


def test_a_failing_method_is_recorded_while_others_finish(monkeypatch, tmp_path):
    from infercomp.config import load_config
    from infercomp.methods.beam_search import BeamSearch
    from infercomp.results import Results
    from infercomp.runner import run_experiment

    def explode(self, engine, prompt_indices):
        raise RuntimeError("simulated failure inside beam search")

    monkeypatch.setattr(BeamSearch, "run_call", explode)
    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "max_new_tokens": 6,
            "num_completions": 1,
            "methods_to_test": ["standard", "beam_search", "batched"],
            "repeats": 1,
        },
    )
    run_experiment(cfg, tmp_path)
    saved = Results.load(tmp_path)
    assert saved.methods["beam_search"].status == "failed"
    assert saved.methods["beam_search"].reason == "RuntimeError: simulated failure inside beam search"
    assert saved.methods["standard"].status == "ok" and saved.methods["batched"].status == "ok"


def test_missing_assistant_falls_back_with_a_reason(tmp_path):
    from infercomp.config import load_config
    from infercomp.runner import run_experiment

    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "assistant_model": str(tmp_path / "no-such-model"),
            "max_new_tokens": 6,
            "num_completions": 1,
            "methods_to_test": ["standard_speculative"],
            "repeats": 1,
        },
    )
    m = run_experiment(cfg, tmp_path).methods["standard_speculative"]
    assert m.status == "ok"
    assert m.fallback.startswith("ran standard without speculation: assistant could not be loaded")
