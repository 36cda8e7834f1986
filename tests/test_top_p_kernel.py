"""The top-p search's Triton kernels (fast/top_p_kernel.py) against the PyTorch version and the
sort rule, through Triton's CPU interpreter. Skipped where Triton is not installed (as
tests/test_fast_gemv.py); on a GPU, the sampled engine tests run them compiled."""

from __future__ import annotations

import pytest
import torch

from triton_interpreter import interpret_or_skip

interpret_or_skip()

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from infercomp.fast import sampling, top_p_kernel  # noqa: E402


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch):
    """CPU tensors through the kernels in the interpreter (off by default, see fast.sampling)."""
    monkeypatch.setattr(sampling, "TOP_P_ON_CPU", True)


from test_fast_sampling import sort_rule_keep  # noqa: E402


def random_rows(seed: int, vocab: int):
    g = torch.Generator().manual_seed(seed)
    sharpness = float(torch.rand((), generator=g) * 8)
    return (torch.randn(3, vocab, generator=g) * sharpness).softmax(-1), float(torch.rand((), generator=g)) * 0.999


def test_the_passes_cover_bits_30_to_0_once():
    for bits in (1, 2, 3, 4, 5):
        plan = top_p_kernel.passes(bits)
        covered = [b for shift, width in plan for b in range(shift + width - 1, shift - 1, -1)]
        assert covered == list(range(30, -1, -1)) and all(w <= bits for _, w in plan)
    assert top_p_kernel.passes(4) == sampling._PASSES  # the kernels' default plan is the PyTorch search's


def test_many_rows_search_with_their_own_digits():
    """From MANY_ROWS rows the passes take BITS_MANY bits (2: 16 passes), below it BITS (4: 8)."""
    g = torch.Generator().manual_seed(13)
    probs = (torch.randn(top_p_kernel.MANY_ROWS, 700, generator=g) * 3).softmax(-1)
    for rows, bits in (
        (top_p_kernel.MANY_ROWS, top_p_kernel.BITS_MANY),
        (top_p_kernel.MANY_ROWS - 1, top_p_kernel.BITS),
    ):
        part, thr, _ = top_p_kernel._search(probs[:rows].contiguous(), 0.9)
        assert part.shape[1] == thr.shape[1] == len(top_p_kernel.passes(bits)) and part.shape[3] == 1 << bits
        assert torch.equal(top_p_kernel.top_p_keep(probs[:rows], 0.9), sort_rule_keep(probs[:rows], 0.9))
    assert top_p_kernel.BITS_MANY != top_p_kernel.BITS  # else this test would not tell the two apart


# vocabularies below one chunk, of several chunks, and not a multiple of the block; digits of 4
# bits (fewer rows' default), 2 (the many rows' default) and 3
@pytest.mark.parametrize("bits", [4, 3, 2])
@pytest.mark.parametrize("seed, vocab", [(0, 300), (1, 4096), (2, 9000), (3, 12289)])
def test_the_kernels_keep_the_same_set(seed, vocab, bits, monkeypatch):
    monkeypatch.setattr(top_p_kernel, "BITS", bits)
    probs, top_p = random_rows(seed, vocab)
    got = top_p_kernel.top_p_keep(probs, top_p)
    assert got.dtype == torch.bool and got.shape == probs.shape
    assert torch.equal(got, sampling.top_p_keep_eager(probs, top_p))
    assert torch.equal(got, sort_rule_keep(probs, top_p))


def test_top_p_keep_takes_the_kernels_where_they_run(monkeypatch):
    calls = []
    monkeypatch.setattr(sampling, "_TOP_P", lambda p, t: calls.append(t) or top_p_kernel.top_p_keep(p, t))
    probs, top_p = random_rows(4, 500)
    assert torch.equal(sampling.top_p_keep(probs, top_p), sort_rule_keep(probs, top_p)) and calls == [top_p]
    monkeypatch.setenv("INFERCOMP_FAST_TOP_P", "eager")
    sampling.top_p_keep(probs, top_p)
    assert calls == [top_p]  # the knob keeps the PyTorch version
    monkeypatch.delenv("INFERCOMP_FAST_TOP_P")
    monkeypatch.setattr(sampling, "TOP_P_ON_CPU", False)
    sampling.top_p_keep(probs, top_p)
    assert calls == [top_p]  # CPU tensors without the interpreter asked for: PyTorch


@triton.jit
def forgets_the_last_pass(part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS: tl.constexpr, CHUNKS_P2: tl.constexpr,
                          NPASS: tl.constexpr, CANDS: tl.constexpr, LAST_SHIFT: tl.constexpr):  # fmt: skip
    """A mutant of threshold_so_far: the bits of the latest pass are left out."""
    return top_p_kernel.threshold_so_far_real(
        part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS - 1, CHUNKS_P2, NPASS, CANDS, LAST_SHIFT
    )


@pytest.mark.parametrize("bits", [4, 2])
def test_a_search_that_drops_a_pass_is_caught(bits, monkeypatch):
    monkeypatch.setattr(top_p_kernel, "BITS", bits)
    probs, _ = random_rows(5, 3000)
    monkeypatch.setattr(top_p_kernel, "threshold_so_far_real", top_p_kernel.threshold_so_far, raising=False)
    monkeypatch.setattr(top_p_kernel, "threshold_so_far", forgets_the_last_pass)
    assert not torch.equal(top_p_kernel.top_p_keep(probs, 0.9), sort_rule_keep(probs, 0.9))


def eager_draw(probs: torch.Tensor, noise: torch.Tensor, top_p: float) -> torch.Tensor:
    """The eager rule the draw kernel replaces (fast.sampling._draw after the softmax)."""
    return (probs * sampling.top_p_keep_eager(probs, top_p) / noise).argmax(-1)


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("seed, vocab", [(6, 300), (7, 4096), (8, 9000), (9, 12289)])
def test_the_draw_kernel_picks_the_eager_rules_token(seed, vocab, bits, monkeypatch):
    """Same probabilities and noise: the same token in every row, for 8 noise draws each; and the
    top-p set matters (some of these draws differ from the draw over the whole vocabulary)."""
    monkeypatch.setattr(top_p_kernel, "BITS", bits)
    probs, top_p = random_rows(seed, vocab)
    g = torch.Generator().manual_seed(seed)
    differs = 0
    for _ in range(8):
        noise = torch.empty(probs.shape).exponential_(generator=g)
        got = top_p_kernel.top_p_draw(probs, noise, top_p)
        assert got.dtype == torch.long and got.shape == probs.shape[:-1]
        assert torch.equal(got, eager_draw(probs, noise, top_p))
        differs += int((got != (probs / noise).argmax(-1)).sum())
    assert differs > 0 or top_p > 0.99


@triton.jit
def keeps_everything(part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS: tl.constexpr, CHUNKS_P2: tl.constexpr,
                     NPASS: tl.constexpr, CANDS: tl.constexpr, LAST_SHIFT: tl.constexpr):  # fmt: skip
    """A mutant of threshold_so_far for the draw: threshold 0, every token kept."""
    return tl.zeros([1], dtype=tl.int32)


def test_a_draw_that_ignores_the_threshold_is_caught(monkeypatch):
    probs, _ = random_rows(10, 3000)
    probs = (probs.log() * 0.3).softmax(-1)  # flatter: many tokens outside the top-p set
    noise = torch.empty(probs.shape).exponential_(generator=torch.Generator().manual_seed(10))
    want = eager_draw(probs, noise, 0.5)
    assert torch.equal(top_p_kernel.top_p_draw(probs, noise, 0.5), want)
    monkeypatch.setattr(top_p_kernel, "threshold_so_far", keeps_everything)
    g = torch.Generator().manual_seed(11)
    draws = [top_p_kernel.top_p_draw(probs, torch.empty(probs.shape).exponential_(generator=g), 0.5) for _ in range(4)]
    kept = sampling.top_p_keep_eager(probs, 0.5)
    assert any(not kept.gather(1, d[:, None]).all() for d in draws)  # a dropped token got drawn


def test_ties_go_to_the_first_index_within_and_across_chunks():
    """Equal scores everywhere: the first kept token wins, as torch.argmax picks the first maximum
    (a lane keeping its last maximum, or the chunks' argmax taking the last chunk, would not)."""
    vocab = 9000  # three chunks of CHUNK = 4096
    flat = torch.full((1, vocab), 1 / vocab)
    later = torch.zeros(1, vocab)
    later[0, 4096:] = 1 / (vocab - 4096)  # kept tokens only in the second and third chunks
    probs, ones = torch.cat([flat, later]), torch.ones(2, vocab)
    assert top_p_kernel.top_p_draw(probs, ones, 0.5).tolist() == [0, 4096]
    assert eager_draw(probs, ones, 0.5).tolist() == [0, 4096]


def test_choose_draws_through_the_kernel_where_it_serves(monkeypatch):
    """choose() with top-p and no top-k takes the draw kernel, with model-dtype logits too; with
    top-k it keeps the eager rule."""
    calls = []
    monkeypatch.setattr(sampling, "_DRAW", lambda p, e, t: calls.append(t) or top_p_kernel.top_p_draw(p, e, t))
    logits = torch.randn(2, 700) * 3
    c = sampling.Choice(do_sample=True, temperature=0.8, top_p=0.9)
    torch.manual_seed(11)
    got = sampling.choose(logits.bfloat16(), c, None)
    torch.manual_seed(11)
    noise = torch.empty(logits.shape).exponential_()
    probs = (logits.bfloat16().float() / 0.8).softmax(-1)
    assert torch.equal(got, eager_draw(probs, noise, 0.9)) and calls == [0.9]
    sampling.choose(logits, sampling.Choice(do_sample=True, temperature=0.8, top_k=50, top_p=0.9), None)
    assert calls == [0.9]  # top-k: the eager rule
    monkeypatch.setattr(sampling, "_maybe_compiled", lambda fn, compiled: fn)  # no compiler needed here
    sampling.choose(logits, sampling.Choice(do_sample=True, top_p=0.9, compiled=True), None)
    assert calls == [0.9]  # the warp compiled whole: its own rule
    monkeypatch.setenv("INFERCOMP_FAST_TOP_P", "eager")
    sampling.choose(logits, c, None)
    assert calls == [0.9]  # the top-p kernels turned off: the eager rule
