"""Quality metrics on hand-made texts with known values, and on the embedded pair."""

from __future__ import annotations

import math

import pytest
import torch

from infercomp.config import load_config
from infercomp.quality import (
    Scored,
    common_prefix,
    contains_word,
    distinct_n,
    pareto_front,
    parse_required_words,
    perplexities,
    repetition,
    self_bleu,
)
from infercomp.runner import run_experiment


def test_distinct_n_known_values():
    assert distinct_n(["a b c d"], 1) == 1.0
    assert distinct_n(["a a a a"], 1) == 0.25
    assert distinct_n(["a b", "a b"], 2) == 0.5  # two bigrams, one unique
    assert distinct_n(["x"], 2) is None


def test_repetition_known_values():
    assert repetition("one two three four five") == 0.0
    assert repetition("a b c a b c a b c") == pytest.approx(4 / 7)  # 7 trigrams, 3 unique
    assert repetition("too short") is None


def test_self_bleu_identical_vs_disjoint():
    same = "the cat sat on the mat and looked at the moon"
    assert self_bleu([same, same, same]) == pytest.approx(100.0)
    assert self_bleu(["the cat sat on the mat", "green ideas sleep very furiously tonight"]) < 5.0
    assert self_bleu([same]) is None


def test_required_words_are_parsed_from_the_seed_prompts():
    assert parse_required_words("generate short bed time story containing word elephant and cake") == [
        "elephant",
        "cake",
    ]
    assert parse_required_words("generate short bed time story containing word dog and sausage") == ["dog", "sausage"]
    assert parse_required_words("Write a short bedtime story with the words rabbit and umbrella.") == [
        "rabbit",
        "umbrella",
    ]
    assert parse_required_words("A story with the words red, blue and green") == ["red", "blue", "green"]
    assert parse_required_words("Once upon a time") == []
    assert contains_word("Two Cakes were baked", "cake") and not contains_word("pancake", "cake")


def test_pareto_front_and_prefix():
    points = {"fast": (100.0, 3.0), "good": (10.0, 1.5), "worse": (50.0, 3.5), "both": (100.0, 1.5)}
    assert pareto_front(points) == {"both"}
    assert pareto_front({"a": (1.0, 2.0), "b": (2.0, 3.0)}) == {"a", "b"}
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2 and common_prefix([1], [1]) == 1


def test_perplexity_matches_a_direct_forward_pass(embedded_pair):
    tok, main, _ = embedded_pair
    prompt = tok("Once upon a time")["input_ids"]
    new = tok(", there was a little lamb named Oliver.")["input_ids"]
    other = tok(" The end.")["input_ids"]
    items = [Scored(0, new, ""), Scored(0, other, "")]
    got = perplexities(main, [prompt], items, tok.pad_token_id)
    with torch.inference_mode():
        logits = main(torch.tensor([prompt + new])).logits[0]
    logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], -1).gather(1, torch.tensor(new)[:, None])
    assert got[0] == pytest.approx(math.exp(-logprobs.mean().item()), rel=1e-4)
    assert got[0] < 5.0  # the model's own kind of text


def test_greedy_beats_nucleus_on_perplexity_and_self_bleu(tmp_path):
    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "max_new_tokens": 60,
            "num_completions": 3,
            "temperature": 0.0,
            "repeats": 1,
            "use_speculative_decoding": True,
            "methods_to_test": ["standard", "nucleus_sampling"],
        },
    )
    res = run_experiment(cfg, tmp_path)
    greedy, nucleus = res.methods["standard"].quality, res.methods["nucleus_sampling"].quality
    assert greedy.mean_perplexity < nucleus.mean_perplexity
    assert greedy.self_bleu > nucleus.self_bleu
    assert greedy.exact_match_vs_greedy == 1.0 and greedy.mean_first_divergence == 60
    spec = res.methods["standard_speculative"].quality
    assert spec.exact_match_vs_greedy == 1.0
    assert spec.mean_perplexity == pytest.approx(greedy.mean_perplexity, rel=1e-5)
    for q in (greedy, nucleus):
        for field in (
            "mean_perplexity",
            "distinct_1",
            "distinct_2",
            "self_bleu",
            "repetition",
            "required_word_rate",
            "exact_match_vs_greedy",
            "mean_first_divergence",
            "pareto_optimal",
        ):
            assert getattr(q, field) is not None, field
        assert set(q.required_word_rates) == {"elephant", "cake", "dog", "sausage"}
    assert all(c.perplexity is not None for c in res.methods["nucleus_sampling"].completions)
    assert any(m.quality.pareto_optimal for m in res.methods.values())


def test_quality_can_be_switched_off(tmp_path):
    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "max_new_tokens": 4,
            "num_completions": 1,
            "repeats": 1,
            "methods_to_test": ["standard"],
            "quality": False,
        },
    )
    assert run_experiment(cfg, tmp_path).methods["standard"].quality is None
