"""infercomp's draft-and-verify engine: lossless greedy output on ragged batches with dynamic and
static caches, draft sources, and the accounting in results (the sampling distribution:
test_speculative_sampling.py)."""

from __future__ import annotations

import pytest
import torch
from tests.test_methods import reference_greedy

from infercomp.config import load_config
from infercomp.measure.memory import kv_bytes_per_token
from infercomp.runner import run_experiment
from infercomp.speculative.draft_verify import (
    ModelDrafter,
    PromptLookupDrafter,
    Sampling,
    expected_accepted_length,
    predicted_speedup,
    speculative_generate,
)

PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
    "generate short bed time story containing word dog and sausage",
]
GREEDY = Sampling(do_sample=False)


def run_spec(pair, prompts, new, drafter=None, cache="dynamic", k=4, **kw):
    tok, main, assistant = pair
    ids = [tok(p)["input_ids"] for p in prompts]
    out = speculative_generate(
        main,
        drafter or ModelDrafter(assistant),
        ids,
        new,
        kw.pop("sampling", GREEDY),
        k,
        {tok.eos_token_id},
        tok.pad_token_id,
        cache_kind=cache,
        **kw,
    )
    return out


@pytest.mark.parametrize("cache", ["dynamic", "static"])
@pytest.mark.parametrize("batch", [1, 4, 8])
def test_greedy_output_is_the_main_models_greedy_output(embedded_pair, cache, batch):
    tok, main, _ = embedded_pair
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(batch)]  # ragged: prompt lengths differ
    out = run_spec(embedded_pair, prompts, 40, cache=cache)
    for prompt, tokens in zip(prompts, out.tokens, strict=True):
        assert tokens == reference_greedy(tok, main, prompt, 40)
    assert out.stats.drafted > 0 and 0 < out.stats.accepted <= out.stats.drafted


def test_rows_that_stop_early_keep_their_own_length(embedded_pair):
    tok, main, _ = embedded_pair
    prompts = ["Once upon a time", "generate short bed time story containing word dog and sausage"]
    out = run_spec(embedded_pair, prompts, 400)
    for prompt, tokens in zip(prompts, out.tokens, strict=True):
        assert tokens == reference_greedy(tok, main, prompt, 400)
    assert tokens[-1] == tok.eos_token_id and len({len(t) for t in out.tokens}) == 2


def test_prompt_lookup_and_adaptive_draft_length_are_lossless(embedded_pair):
    tok, main, _ = embedded_pair
    prompts = PROMPTS[:3]
    # Long enough for whole stories: repeats of names and phrases give lookup something to find.
    lookup = run_spec(embedded_pair, prompts, 200, drafter=PromptLookupDrafter(3))
    adaptive = run_spec(embedded_pair, prompts, 200, adaptive=True, k=2)
    for i, prompt in enumerate(prompts):
        ref = reference_greedy(tok, main, prompt, 200)
        assert lookup.tokens[i] == ref and adaptive.tokens[i] == ref
    assert lookup.stats.accepted > 0
    assert len(set(adaptive.stats.draft_lengths)) > 1  # it did tune k


def test_fixed_length_matches_min_new_tokens(embedded_pair):
    tok, main, _ = embedded_pair
    prompt = "Once upon a time"
    out = run_spec(embedded_pair, [prompt], 300, fixed_length=True, cache="static")
    ids = tok(prompt, return_tensors="pt").input_ids
    ref = main.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=300,
        min_new_tokens=300,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )[0, ids.shape[1] :].tolist()
    assert out.tokens[0] == ref


def test_expected_length_and_predicted_speedup():
    assert expected_accepted_length(0.0, 4) == 1.0
    assert expected_accepted_length(1.0, 4) == 5.0
    assert expected_accepted_length(0.5, 2) == pytest.approx(1.75)
    assert predicted_speedup(0.5, 2, 0.25) == pytest.approx(1.75 / 1.5)


def test_prompt_lookup_proposes_what_followed_the_last_ngram():
    lookup = PromptLookupDrafter(max_ngram=2)
    assert lookup.propose([1, 2, 3, 4, 9, 1, 2], 3) == [3, 4, 9]
    assert lookup.propose([5, 6, 7], 3) == []


def test_results_carry_speculative_accounting(tmp_path, embedded_pair):
    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "max_new_tokens": 30,
            "num_completions": 2,
            "temperature": 0.0,
            "use_speculative_decoding": True,
            "repeats": 1,
            "cache_implementation": "static",
            "engine": "transformers",  # the reference engine's caches are what this test measures
        },
    )
    res = run_experiment(cfg, tmp_path)
    for name in ("standard_speculative", "batched_speculative", "nucleus_sampling_speculative"):
        m = res.methods[name]
        assert m.status == "ok" and m.execution.startswith("speculative")
        acc = m.speculative
        for field in (
            "drafted_tokens",
            "accepted_tokens",
            "acceptance_rate",
            "mean_accepted_length",
            "accepted_histogram",
            "draft_time_s",
            "verify_time_s",
            "cost_ratio",
            "predicted_speedup",
            "measured_speedup",
        ):
            assert getattr(acc, field) is not None, (name, field)
        assert sum(acc.accepted_histogram) > 0 and 0 < acc.acceptance_rate <= 1
    for name in ("standard_speculative", "batched_speculative"):
        assert res.methods[name].quality.exact_match_vs_greedy == 1.0
    beam = res.methods["beam_search_speculative"]
    assert beam.status == "ok" and beam.speculation_note.startswith("not applicable")
    # Measured memory: beam search never used the assistant, so its weights are the main model's.
    assert beam.summary.memory.weights_gb == res.methods["beam_search"].summary.memory.weights_gb
    assert res.methods["standard_speculative"].summary.memory.weights_gb > beam.summary.memory.weights_gb
    # The static speculative caches hold prompt + (max_new + 2)(k + 1) slots per row, in both
    # models: measured on the tensors, far above the tokens-held formula.
    _, main, assistant = embedded_pair
    per_slot = kv_bytes_per_token(main) + kv_bytes_per_token(assistant)
    for name, rows in (("standard_speculative", 1), ("batched_speculative", None)):
        m = res.methods[name]
        longest = max(c.prompt_tokens for c in m.completions)
        rows = rows or len(m.completions)  # one call of both prompts' completions (batch_size >= 4)
        slots = longest + (30 + 2) * (cfg.num_assistant_tokens + 1)
        assert m.summary.memory.kv_cache_gb == pytest.approx(per_slot * slots * rows / 1e9), name
        assert m.summary.memory.kv_cache_gb > 2 * m.summary.memory.kv_cache_formula_gb
        assert m.summary.memory.kv_cache_source.startswith("measured")
