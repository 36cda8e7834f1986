"""Speculative sampling follows the main model's own sampling distribution, at every position.

A tiny random Qwen3 with a 6-token vocabulary makes the reference exact: one teacher-forced pass
over every continuation gives the main model's joint probability of each L-token output, so the
marginal of every position and of every adjacent pair is known exactly. Many rows are sampled by
draft-and-verify (rows of two prompt lengths in one ragged batch) and compared with a Pearson
chi-square test per (prompt, position) and per (prompt, adjacent pair), Bonferroni-corrected to
an overall significance of 1e-3.

Generating k + 2 tokens with draft length k sends every draft position and the bonus token
through accept/reject: token 0 comes from the prefill, tokens 1..k are the first round's drafts,
token k + 1 is the correction or the bonus. Planted wrong acceptance rules (mutants) must be
rejected by the same statistic that accepts the real rule.

Tests take an engine name; `sample` is the one place that knows how to run each engine.
"""

from __future__ import annotations

import math
import statistics
import types

import pytest
import torch

from infercomp.speculative import draft_verify as spec

VOCAB = 6
PROMPTS = [[1, 4, 2, 5], [3, 3, 0, 1, 5, 2, 4]]  # two lengths: every batch is ragged
ROWS_PER_PROMPT = 1200
ALPHA = 1e-3  # overall false-rejection rate of one check (Bonferroni over its tests)
ENGINES = ["reference"]


def tiny_qwen3(seed: int):
    """1 layer, 16 wide, vocab 6; a large init scale gives peaked, position-dependent distributions."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        initializer_range=0.5,
    )
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def tiny_pair():
    """The main model and a perturbed copy as the assistant: close enough that later drafts are
    often accepted, different enough (total variation about 0.1-0.4) that wrong rules show."""
    main = tiny_qwen3(0)
    draft = tiny_qwen3(0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.08)
    return main, draft


def reference_probs(logits: torch.Tensor, s: spec.Sampling) -> torch.Tensor:
    """The main model's sampling distribution through transformers' own warpers. (n, vocab)"""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores = logits.float()
    if s.temperature != 1.0:
        scores = TemperatureLogitsWarper(s.temperature)(None, scores)
    if s.top_k:
        scores = TopKLogitsWarper(s.top_k)(None, scores)
    if s.top_p < 1.0:
        scores = TopPLogitsWarper(s.top_p)(None, scores)
    return scores.softmax(-1)


@torch.inference_mode()
def exact_joint(main, prompt: list[int], length: int, s: spec.Sampling) -> torch.Tensor:
    """P(t_1..t_L | prompt) under the main model's sampling, as a (vocab,) * L tensor."""
    grid = [torch.arange(VOCAB)] * (length - 1)
    conts = torch.cartesian_prod(*grid).reshape(-1, length - 1)  # (V^(L-1), L-1)
    ids = torch.cat([torch.tensor(prompt).expand(conts.shape[0], -1), conts], dim=1)
    logits = torch.cat([main(chunk).logits for chunk in ids.split(8192)])
    p = reference_probs(logits[:, len(prompt) - 1 :].reshape(-1, VOCAB), s).reshape(-1, length, VOCAB)
    prefix = p[:, :-1].gather(2, conts[:, :, None]).squeeze(2).prod(1)  # (V^(L-1),)
    return (prefix[:, None] * p[:, -1]).reshape((VOCAB,) * length)


def sample(engine: str, main, drafter, new: int, s: spec.Sampling, k: int, seed: int, **kw) -> torch.Tensor:
    """Draft-and-verify over ROWS_PER_PROMPT rows of each prompt, interleaved in one batch.
    Returns (rows, new) tokens; row r used PROMPTS[r % 2]."""
    prompts = [PROMPTS[r % len(PROMPTS)] for r in range(ROWS_PER_PROMPT * len(PROMPTS))]
    if engine != "reference":
        raise ValueError(f"unknown engine {engine}")
    torch.manual_seed(seed)
    out = spec.speculative_generate(main, drafter, prompts, new, s, k, eos_ids=set(), pad_id=0, **kw)
    assert all(len(t) == new for t in out.tokens)
    return torch.tensor(out.tokens), out.stats


def chi_square(observed: torch.Tensor, expected_p: torch.Tensor) -> tuple[float, int]:
    """Pearson statistic over cells; cells expecting < 5 are pooled into one. Returns (stat, df);
    a token the main model can never sample (probability exactly 0) gives an infinite statistic."""
    n = float(observed.sum())
    exp = expected_p.flatten().double() * n
    obs = observed.flatten().double()
    if bool((obs[exp == 0] > 0).any()):
        return math.inf, 1
    small = exp < 5
    cells_o = list(obs[~small]) + ([obs[small].sum()] if small.any() else [])
    cells_e = list(exp[~small]) + ([exp[small].sum()] if small.any() else [])
    if len(cells_e) > 1 and cells_e[-1] < 5:  # the pool itself is too small: fold it in
        i = min(range(len(cells_e) - 1), key=lambda j: cells_e[j])
        cells_o[i] += cells_o.pop()
        cells_e[i] += cells_e.pop()
    stat = sum(float((o - e) ** 2 / e) for o, e in zip(cells_o, cells_e, strict=True))
    return stat, len(cells_e) - 1


def critical(df: int, alpha: float) -> float:
    """Chi-square upper quantile by the Wilson-Hilferty approximation (good for df >= 2)."""
    z = statistics.NormalDist().inv_cdf(1 - alpha)
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def worst_ratio(tokens: torch.Tensor, joints: list[torch.Tensor]) -> tuple[float, str]:
    """Largest statistic / critical value over every (prompt, position) marginal and every
    (prompt, adjacent pair) joint; below 1 means no test rejects at overall level ALPHA."""
    length = tokens.shape[1]
    tests = []
    for j, joint in enumerate(joints):
        rows = tokens[j :: len(joints)]
        for i in range(length):
            marginal = joint.sum(dim=[d for d in range(length) if d != i])
            tests.append((f"prompt {j} position {i}", torch.bincount(rows[:, i], minlength=VOCAB), marginal))
        for i in range(length - 1):
            pair = joint.sum(dim=[d for d in range(length) if d not in (i, i + 1)])
            obs = torch.bincount(rows[:, i] * VOCAB + rows[:, i + 1], minlength=VOCAB * VOCAB)
            tests.append((f"prompt {j} pair {i},{i + 1}", obs, pair))
    level = ALPHA / len(tests)
    worst, where = 0.0, ""
    for name, obs, p in tests:
        stat, df = chi_square(obs, p)
        if df < 1:  # all the mass in one cell: only the zero-probability check above applies
            continue
        ratio = stat / critical(df, level)
        if ratio > worst:
            worst, where = ratio, f"{name}: chi2 {stat:.1f}, df {df}"
    return worst, where


# --- planted wrong acceptance rules ---------------------------------------------------------


def later_drafts_always_accepted(draft, p, q, sampling, pick, generator):
    """Right at the first draft, then every later draft kept; the bonus drawn from the draft."""
    n, extra = REAL_ACCEPT(draft[:1], p[:2], None if q is None else q[:1], sampling, pick, generator)
    if n < 1 or len(draft) == 1:
        return n, extra
    bonus = pick(q[-1]) if q is not None else draft[-1]
    return len(draft), bonus


def bonus_from_the_wrong_position(draft, p, q, sampling, pick, generator):
    """Right accept/reject, but the bonus token drawn from the last draft's distribution."""
    n, extra = REAL_ACCEPT(draft, p, q, sampling, pick, generator)
    if n == len(draft) and draft:
        return n, pick(p[len(draft) - 1])
    return n, extra


def residual_not_clamped(draft, p, q, sampling, pick, generator):
    """Right acceptance, but a rejection redraws from p itself: what an unclamped p - q becomes
    (its sum is 0, so the normalisation falls back to p), and, for a point draft, keeping x."""
    for i, x in enumerate(draft):
        qx = 1.0 if q is None else float(q[i, x])
        if qx > 0 and torch.rand((), generator=generator).item() < min(1.0, float(p[i, x]) / qx):
            continue
        return i, pick(p[i])
    return len(draft), pick(p[len(draft)])


REAL_ACCEPT = spec._accept
MUTANTS = [later_drafts_always_accepted, bonus_from_the_wrong_position, residual_not_clamped]

PLAIN = spec.Sampling(do_sample=True)
WARPED = spec.Sampling(do_sample=True, temperature=0.8, top_k=4, top_p=0.9)
K = 3
# (draft source, sampling, cache). "self" drafts with the main model itself: every draft is
# accepted, so every row's token k + 1 is a bonus token.
CASES = {
    "assistant": ("assistant", PLAIN, "dynamic"),
    "assistant-warped-static": ("assistant", WARPED, "static"),
    "prompt_lookup": ("prompt_lookup", PLAIN, "dynamic"),
    "self": ("self", PLAIN, "dynamic"),
}
# Each planted rule against the cases where its error is visible: a draft source that never
# reaches the bonus cannot show a wrong bonus.
MUTANT_CASES = [
    (later_drafts_always_accepted, "assistant"),
    (later_drafts_always_accepted, "prompt_lookup"),
    (bonus_from_the_wrong_position, "self"),
    (residual_not_clamped, "assistant"),
    (residual_not_clamped, "prompt_lookup"),
]


def drafter_for(source: str, tiny_pair):
    if source == "prompt_lookup":
        return spec.PromptLookupDrafter(max_ngram=2)
    return spec.ModelDrafter(tiny_pair[1] if source == "assistant" else tiny_pair[0])


def run_case(engine: str, tiny_pair, case: str, seed: int = 0):
    """Sample k + 2 tokens (prefill token, k drafts, correction or bonus) and the exact joints."""
    source, sampling, cache = CASES[case]
    joints = [exact_joint(tiny_pair[0], p, K + 2, sampling) for p in PROMPTS]
    drafter = drafter_for(source, tiny_pair)
    tokens, stats = sample(engine, tiny_pair[0], drafter, K + 2, sampling, K, seed, cache_kind=cache)
    return tokens, stats, joints


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", list(CASES))
def test_every_position_follows_the_main_model(tiny_pair, engine, case):
    tokens, stats, joints = run_case(engine, tiny_pair, case)
    rounds = sum(stats.histogram)
    assert stats.histogram[K] > 0.05 * rounds or case == "prompt_lookup", stats.histogram  # all k kept
    assert stats.histogram[0] > 0.05 * rounds or case == "self", stats.histogram  # first draft rejected
    worst, where = worst_ratio(tokens, joints)
    assert worst < 1.0, where  # no test rejects at overall significance ALPHA


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("mutant", "case"), MUTANT_CASES, ids=lambda v: getattr(v, "__name__", v))
def test_wrong_acceptance_rules_are_rejected(tiny_pair, engine, mutant, case, monkeypatch):
    monkeypatch.setattr(spec, "_accept", mutant)
    tokens, _, joints = run_case(engine, tiny_pair, case)
    worst, where = worst_ratio(tokens, joints)
    assert worst > 2.0, where  # rejected with margin: twice the critical value


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_adaptive_draft_length_keeps_the_distribution(tiny_pair, engine, monkeypatch):
    """Longer outputs, so several rounds run with a draft length tuned between rounds. A fake
    clock (one unit per reading) makes the tuning, and so the test, deterministic."""
    main, new = tiny_pair[0], 7
    joints = [exact_joint(main, p, new, PLAIN) for p in PROMPTS]

    def run():
        ticks = iter(range(10**9))
        monkeypatch.setattr(spec, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
        drafter = drafter_for("assistant", tiny_pair)
        return sample(engine, main, drafter, new, PLAIN, 2, seed=1, adaptive=True)

    tokens, stats = run()
    assert len(set(stats.draft_lengths)) > 1, stats.draft_lengths  # k did change between rounds
    worst, where = worst_ratio(tokens, joints)
    assert worst < 1.0, where

    monkeypatch.setattr(spec, "_accept", later_drafts_always_accepted)
    bad, _ = run()
    worst, where = worst_ratio(bad, joints)
    assert worst > 2.0, where
