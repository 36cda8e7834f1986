"""The fast engine against the reference: greedy token for token in float32 (batch 1, 4, 8, with
EOS inside a batch), beam search's sequences and scores against transformers', speculative greedy
with both draft sources, and the sampled distribution of every position up to k + 2 against exact
probabilities, with deliberately wrong acceptance rules that the test must catch."""

from __future__ import annotations

import pytest
import torch

from infercomp.config import load_config
from infercomp.engine import Engine
from infercomp.fast import build_fast_engine
from infercomp.fast import speculative as fast_spec
from infercomp.loader import load_engine
from infercomp.measure.timing import count_new_tokens

PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
]
# The embedded main ends these prompts with EOS after 168, 163 and 168 tokens (greedy, float32),
# so 165 new tokens give rows that stop at EOS and rows that stop at the length limit in one batch.
NEW = 165


def engines(**overrides):
    base = dict(prompts=PROMPTS, num_completions=8, batch_size=8, max_new_tokens=NEW, temperature=0.0, dtype="float32")
    cfg = load_config("example", embedded=True, overrides={**base, **overrides})
    ref = load_engine(cfg, need_assistant=True)
    fast = build_fast_engine(load_engine(cfg, need_assistant=True))
    assert type(fast).__name__ == "FastEngine", fast.settings.notes
    return ref, fast


@pytest.fixture(scope="module")
def pair():
    return engines()


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 4, 8])
def test_greedy_matches_the_reference_token_for_token(pair, batch):
    ref, fast = pair
    index = [i % len(PROMPTS) for i in range(batch)]
    want, got = ref.generate(index, do_sample=False), fast.generate(index, do_sample=False)
    assert [r.token_ids for r in got.rows] == [r.token_ids for r in want.rows]
    assert [r.finish for r in got.rows] == [r.finish for r in want.rows]
    if batch >= 4:  # EOS inside the batch: some rows stop early, others run to the limit
        assert {r.finish for r in got.rows} == {"eos", "length"}


@pytest.mark.slow
def test_beam_search_matches_transformers_sequences_and_scores(pair):
    ref, fast = pair
    for p in range(len(PROMPTS)):
        enc = ref.tokenizer([PROMPTS[p]], return_tensors="pt")
        out = ref.main.generate(
            **enc,
            **ref.generation_defaults(),
            num_beams=4,
            num_return_sequences=4,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
        got = fast.generate([p], do_sample=False, num_beams=4, num_return_sequences=4)
        prompt_len = enc["input_ids"].shape[1]
        for j, row in enumerate(got.rows):
            ids = out.sequences[j, prompt_len:].tolist()
            n, _ = count_new_tokens(ids, ref.eos_ids, False)
            assert row.token_ids == ids[:n]
            assert row.score == pytest.approx(float(out.sequences_scores[j]), abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("source", ["assistant", "prompt_lookup"])
def test_speculative_greedy_is_the_reference_greedy(pair, source):
    ref, fast = pair
    fast.config = fast.config.model_copy(update={"draft_source": source})
    index = [2, 0, 1, 2]  # ragged: prompt lengths differ
    want = ref.generate(index, do_sample=False)
    got = fast.draft_and_verify(index, do_sample=False)
    fast.config = ref.config
    assert [r.token_ids for r in got.rows] == [r.token_ids for r in want.rows]
    st = got.speculative
    assert st.rounds > 0 and 0 <= st.accepted <= st.drafted
    if source == "assistant":
        assert st.accepted / st.drafted > 0.6  # the distilled assistant agrees with the main most of the time


def test_fixed_length_runs_every_row_to_the_limit():
    ref, fast = engines(max_new_tokens=40, fixed_length=True, num_completions=4, batch_size=4)
    want, got = ref.generate([0, 1, 2], do_sample=False), fast.generate([0, 1, 2], do_sample=False)
    assert [r.token_ids for r in got.rows] == [r.token_ids for r in want.rows]
    assert all(len(r.token_ids) == 40 and r.finish == "length" for r in got.rows)
    spec = fast.draft_and_verify([0, 1, 2], do_sample=False)
    assert [r.token_ids for r in spec.rows] == [r.token_ids for r in want.rows]


# ---------------------------------------------------------------------------------------------
# Sampling: the distribution of every position up to k + 2, exactly.


class DigitTokenizer:
    """Prompts are space-separated token ids; no EOS: rows run to max_new_tokens."""

    pad_token_id = 0
    eos_token_id = None

    def __call__(self, text, **kwargs):
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(map(str, ids))


VOCAB, K = 6, 3
TINY_PROMPTS = ["1 2 3", "4 5 1 2 2"]


def tiny_model(seed: int, temperature: float):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=64,
        tie_word_embeddings=False,
    )
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(cfg).eval()
    with torch.no_grad():  # sharper than the tiny init, so drafts and targets really differ
        model.lm_head.weight.mul_(10.0 * temperature)
    model.generation_config.eos_token_id = None
    return model


def noisy_copy(model, noise: float):
    """A draft that agrees with the main model about half the time (acceptance ~0.5 here): every
    mutant below then changes some position's distribution by a wide margin."""
    import copy

    draft = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * noise * p.std().clamp(min=1e-3))
    return draft


def tiny_engine(rows: int, **overrides):
    from infercomp.models import Settings

    cfg = load_config(
        "example",
        overrides=dict(
            main_model="tiny-main",
            assistant_model="tiny-draft",
            prompts=TINY_PROMPTS,
            num_completions=rows,
            batch_size=rows,
            max_new_tokens=K + 2,
            num_assistant_tokens=K,
            dtype="float32",
            device="cpu",
            **overrides,
        ),
    )
    settings = Settings("cpu", "float32", "sdpa", "none", "dynamic", "weights", False, K)
    main = tiny_model(1, 1.0)
    draft = noisy_copy(main, 0.6)
    ref = Engine(cfg, settings, DigitTokenizer(), main, draft, None, {"main": 0.0, "assistant": 0.0})
    return build_fast_engine(ref)


@torch.no_grad()
def exact_marginals(model, prompt: list[int], steps: int, warp) -> list[torch.Tensor]:
    """P(token at new position t), t = 1..steps, by enumerating every prefix (VOCAB ** t rows)."""
    prefixes = torch.tensor([prompt])
    weight = torch.ones(1)
    out = []
    for _ in range(steps):
        p = warp(model(prefixes).logits[:, -1].float())  # (n, vocab)
        out.append((weight[:, None] * p).sum(0))
        weight = (weight[:, None] * p).reshape(-1)
        prefixes = torch.cat(
            [prefixes.repeat_interleave(VOCAB, 0), torch.arange(VOCAB).repeat(len(prefixes))[:, None]], 1
        )
    return out


def sampled_marginals(engine, prompt_index: int, samples: int, method: str, choice: dict) -> list[torch.Tensor]:
    counts = torch.zeros(K + 2, VOCAB)
    rows = engine.cap.rows
    for _ in range(samples // rows):
        call = getattr(engine, method)([prompt_index] * rows, **choice)
        for row in call.rows:
            assert len(row.token_ids) == K + 2
            counts[torch.arange(K + 2), torch.tensor(row.token_ids)] += 1
    return [c / c.sum() for c in counts]


def worst_p_value(sampled, exact, samples) -> float:
    """Smallest chi-square p-value over positions (bins with an expected count under 5 merged)."""
    worst = 1.0
    for got, want in zip(sampled, exact, strict=True):
        expected = want * samples
        big = expected >= 5
        obs = torch.cat([got[big] * samples, (got[~big] * samples).sum()[None]])
        exp = torch.cat([expected[big], expected[~big].sum()[None]])
        keep = exp > 0
        obs, exp = obs[keep], exp[keep]
        exp = exp * obs.sum() / exp.sum()
        stat = float(((obs - exp) ** 2 / exp).sum())
        dof = len(obs) - 1
        if dof > 0:  # the chi-square survival function: the regularized upper incomplete gamma
            worst = min(worst, float(torch.special.gammaincc(torch.tensor(dof / 2), torch.tensor(stat / 2))))
    return worst


CHOICE = {"do_sample": True, "temperature": 0.8, "top_p": 0.9, "top_k": 0}
SAMPLES = 4096


def exact_for(engine, prompt_index: int):
    # The reference engine's warping (its own code, not the fast engine's), applied exactly.
    from infercomp.speculative.draft_verify import Sampling, warp

    c = Sampling(True, temperature=0.8, top_k=0, top_p=0.9)
    prompt = [int(t) for t in TINY_PROMPTS[prompt_index].split()]
    return exact_marginals(engine.main, prompt, K + 2, lambda logits: warp(logits, c))


def accept_later_drafts_blindly(p, st, choice):
    """Mutant: the real rule at the first draft, every later draft accepted."""
    n, extra = ACCEPT(p, st, choice)
    k = st.k_max
    return torch.where(n >= 1, torch.full_like(n, k), n), torch.where(n >= 1, st.drafts[:, -1], extra)


def bonus_from_the_draft(p, st, choice):
    """Mutant: when every draft is kept, the bonus token repeats the last draft instead of p_k."""
    n, extra = ACCEPT(p, st, choice)
    return n, torch.where(n == st.k_max, st.drafts[:, -1], extra)


def resample_from_p_at_rejection(p, st, choice):
    """Mutant: at a rejection, draw from p itself instead of the residual max(0, p - q)."""
    from infercomp.fast.sampling import sample

    n, extra = ACCEPT(p, st, choice)
    p_n = p.gather(1, n[:, None, None].expand(-1, 1, p.shape[-1]))[:, 0]
    return n, torch.where(n < st.k_max, sample(p_n), extra)


ACCEPT = fast_spec.accept


@pytest.mark.slow
@pytest.mark.parametrize("source", ["assistant", "prompt_lookup"])
def test_speculative_sampling_matches_exact_marginals_and_mutants_fail(source, monkeypatch):
    torch.manual_seed(0)
    engine = tiny_engine(256, draft_source=source)
    exact = exact_for(engine, 1)
    real = worst_p_value(sampled_marginals(engine, 1, SAMPLES, "draft_and_verify", CHOICE), exact, SAMPLES)
    assert real > 1e-4, f"the real acceptance rule fails its own test (p = {real:.2e})"
    # A point proposal's residual is p without the rejected token; n-gram drafts are rarely all
    # kept here, so the bonus mutant is tested with the model drafts, where that is common.
    mutants = [accept_later_drafts_blindly, resample_from_p_at_rejection]
    if source == "assistant":
        mutants.append(bonus_from_the_draft)
    for mutant in mutants:
        monkeypatch.setattr(fast_spec, "accept", mutant)
        torch.manual_seed(0)
        p = worst_p_value(sampled_marginals(engine, 1, SAMPLES, "draft_and_verify", CHOICE), exact, SAMPLES)
        assert p < 1e-6, f"{mutant.__name__} was not caught (p = {p:.2e})"
        monkeypatch.setattr(fast_spec, "accept", ACCEPT)


@pytest.mark.slow
def test_sampling_ragged_batch_and_adaptive_draft_length():
    """Rows of two prompts of different lengths in one call, adaptive k: each prompt's positions
    follow its own exact marginals; plain sampling too."""
    torch.manual_seed(1)
    engine = tiny_engine(256, adaptive_draft=True)
    for method in ("draft_and_verify", "generate"):
        counts = {0: torch.zeros(K + 2, VOCAB), 1: torch.zeros(K + 2, VOCAB)}
        for _ in range(SAMPLES // 128):
            call = getattr(engine, method)([0, 1] * 128, **CHOICE)
            for row in call.rows:
                counts[row.prompt_index][torch.arange(K + 2), torch.tensor(row.token_ids)] += 1
        for prompt_index in (0, 1):
            sampled = [c / c.sum() for c in counts[prompt_index]]
            p = worst_p_value(sampled, exact_for(engine, prompt_index), SAMPLES)
            assert p > 1e-4, f"{method}, prompt {prompt_index}: p = {p:.2e}"


@pytest.mark.parametrize("prefill", [True, False])
def test_layers_that_compute_the_next_norm_equal_the_plain_layers(prefill, monkeypatch):
    """Each layer computing the norm after it (model.NORM_CHAIN: the next layer's input norm, the
    model's final norm after the last) gives float32 logits equal to norming at the start of each
    layer, for a prompt and for a step after it, and only where the rows are within NORM_CHAIN.
    Every norm weight is made distinct first, so a chain that handed a layer the wrong layer's
    norm would differ."""
    from infercomp.fast import model as lean_model
    from infercomp.fast import runtime

    fast = tiny_engine(2)
    lean, cache = fast.lean, fast.cache
    with torch.no_grad():
        for i, w in enumerate(lean.layers):
            w.norm_in.mul_(1.0 + 0.3 * (i + 1))
            w.norm_post.mul_(1.0 - 0.2 * (i + 1))
        lean.norm.mul_(1.7)
    q = 4 if prefill else 1
    ids = torch.tensor([[1, 2, 3, 4], [4, 5, 1, 2]])[:, :q]
    pos = torch.arange(q)[None].expand(2, q) + (0 if prefill else 4)
    rows = torch.arange(2)[:, None].expand(2, q)
    logits, arity = [], []
    layer = fast.rt.layer
    monkeypatch.setattr(fast.rt, "layer", lambda *a: arity.append(len(a)) or layer(*a))
    # (NORM_CHAIN, whether it chains): off; a limit of exactly these rows; one row fewer than them
    for limit, chain in ((0, False), (2 * q, True), (2 * q - 1, False)):
        monkeypatch.setattr(lean_model, "NORM_CHAIN", limit)
        if not prefill:  # the step reads slots 0..3: the same prompt written first
            warm = torch.tensor([[1, 2, 3, 4], [4, 5, 1, 2]])
            runtime.forward(
                fast.rt, lean, cache, warm, torch.arange(4)[None].expand(2, 4), rows[:, :1].expand(2, 4), prefill=True
            )
        arity.clear()
        logits.append(runtime.forward(fast.rt, lean, cache, ids, pos, rows, prefill=prefill, visible=8))
        assert set(arity) == {12 if chain else 10}  # the chained calls pass normed and norm_next
    assert all(torch.equal(logits[0], other) for other in logits[1:])


def test_the_block_kernel_is_on_unless_turned_off(monkeypatch):
    """fast.attend.BLOCKS's setting: on by default, 0 turns it off, anything else is an error."""
    from infercomp.fast import attend as fast_attend

    monkeypatch.delenv("INFERCOMP_FAST_BLOCK_ATTENTION", raising=False)
    assert fast_attend._blocks_from_env() is True
    monkeypatch.setenv("INFERCOMP_FAST_BLOCK_ATTENTION", "0")
    assert fast_attend._blocks_from_env() is False
    monkeypatch.setenv("INFERCOMP_FAST_BLOCK_ATTENTION", "off")  # not silently on
    with pytest.raises(ValueError, match="INFERCOMP_FAST_BLOCK_ATTENTION='off': expected 1"):
        fast_attend._blocks_from_env()
