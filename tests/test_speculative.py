"""infercomp's draft-and-verify engine: lossless greedy output on ragged batches with dynamic and
static caches, the sampling distribution, draft sources, and the accounting in results."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from tests.test_methods import reference_greedy

from infercomp.config import load_config
from infercomp.runner import run_experiment
from infercomp.speculative import engine as spec
from infercomp.speculative.engine import (
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


def _chi_square_critical(df: int, z: float = 3.09) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (z = 3.09: p = 0.001)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _joint_counts_and_expectation(pair, sampling, rows, seed, drafter=None):
    """Sample two tokens per row; return observed counts of (t1, t2) and exact main-model
    probabilities p(t1) p(t2 | t1)."""
    tok, main, _ = pair
    prompt = "Once upon a time, there was a"
    torch.manual_seed(seed)
    out = run_spec(pair, [prompt] * rows, 2, k=3, sampling=sampling, drafter=drafter)
    counts = Counter(tuple(t[:2]) for t in out.tokens)
    ids = tok(prompt)["input_ids"]
    with torch.inference_mode():
        p1 = spec.warp(main(torch.tensor([ids])).logits[0, -1], sampling)
        expected = {}
        for t1 in {a for a, _ in counts}:
            p2 = spec.warp(main(torch.tensor([ids + [t1]])).logits[0, -1], sampling)
            for t2 in range(p2.shape[0]):
                if p1[t1] * p2[t2] > 0:
                    expected[(t1, t2)] = float(p1[t1] * p2[t2])
    return counts, expected, out.stats


def _chi_square(counts, expected, rows):
    """Chi-square over pairs with expected count >= 5, the rest pooled into one cell."""
    stat, df, other_obs, other_exp = 0.0, -1, 0, 0.0
    for key, prob in expected.items():
        e = prob * rows
        if e >= 5:
            stat += (counts.get(key, 0) - e) ** 2 / e
            df += 1
        else:
            other_obs += counts.get(key, 0)
            other_exp += e
    seen_elsewhere = sum(c for k, c in counts.items() if k not in expected)
    other_obs += seen_elsewhere
    other_exp = rows - sum(p * rows for p in expected.values() if p * rows >= 5)
    if other_exp >= 5:
        stat += (other_obs - other_exp) ** 2 / other_exp
        df += 1
    return stat, df


def _random_drafter(pair):
    """An untrained assistant: its q is far from p, so most drafts are rejected."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(123)
    return ModelDrafter(AutoModelForCausalLM.from_config(pair[2].config).eval())


@pytest.mark.slow
def test_speculative_sampling_follows_the_main_models_distribution(embedded_pair, monkeypatch):
    rows = 2000
    # High temperature and top-k/top-p: main and draft distributions differ, so drafts are often
    # rejected and the residual distribution is exercised; warping applies to both p and q.
    sampling = Sampling(do_sample=True, temperature=1.6, top_k=40, top_p=0.95)
    for drafter in (None, _random_drafter(embedded_pair)):  # the trained assistant, then a bad one
        counts, expected, stats = _joint_counts_and_expectation(embedded_pair, sampling, rows, 0, drafter)
        assert stats.accepted < stats.drafted  # rejections happened
        stat, df = _chi_square(counts, expected, rows)
        assert df >= 5
        assert stat < _chi_square_critical(df), (stat, df)

    # The same test rejects a wrong rule: keeping every draft gives the draft's distribution.
    def accept_all(draft, p, q, sampling, pick, generator):
        return len(draft), pick(p[len(draft)])

    monkeypatch.setattr(spec, "_accept", accept_all)
    counts, expected, _ = _joint_counts_and_expectation(
        embedded_pair, sampling, rows, 0, _random_drafter(embedded_pair)
    )
    stat_bad, df_bad = _chi_square(counts, expected, rows)
    assert stat_bad > _chi_square_critical(df_bad), (stat_bad, df_bad)


def test_expected_length_and_predicted_speedup():
    assert expected_accepted_length(0.0, 4) == 1.0
    assert expected_accepted_length(1.0, 4) == 5.0
    assert expected_accepted_length(0.5, 2) == pytest.approx(1.75)
    assert predicted_speedup(0.5, 2, 0.25) == pytest.approx(1.75 / 1.5)


def test_prompt_lookup_proposes_what_followed_the_last_ngram():
    lookup = PromptLookupDrafter(max_ngram=2)
    assert lookup.propose([1, 2, 3, 4, 9, 1, 2], 3) == [3, 4, 9]
    assert lookup.propose([5, 6, 7], 3) == []


def test_results_carry_speculative_accounting(tmp_path):
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
    assert beam.status == "ok" and beam.speculation.startswith("not applicable")
