"""The Triton kernels behind fast.sampling.top_p_keep on CUDA: the same radix search for the
top-p threshold, without the (rows, 16, vocab) tensors the PyTorch version materialises (at 32
rows of Qwen3's 151,936-token vocabulary that is 311 MB written and read per pass).

Pass i (a few bits a pass from bit 30 down, the last pass narrower: 8 passes at 4 bits): one
program per (row, chunk of CHUNK tokens) first rebuilds the threshold's higher bits: those of
passes before i-1 as the previous pass stored them, and pass i-1's digit from its partial masses
(every program sums them in the same order, so all agree and the result does not depend on
timing); then it stores its chunk's mass at or above each of the 2^bits candidates. `keep`
rebuilds the whole threshold and writes the mask; `draw` rebuilds it and picks, per chunk, the
kept token of largest p / E (a sampled token without the mask, see top_p_draw).
Probabilities are non-negative float32, so their bits as int32 order like the values.

Imported only where Triton is installed; the interpreter (TRITON_INTERPRET=1) runs it on CPU.
"""

import torch
import triton
import triton.language as tl

from infercomp.fast.sampling import passes

# Bits of the threshold a pass decides: BITS below MANY_ROWS rows, BITS_MANY from there. Each
# pass compares every probability with 2^bits candidates, and at 32 rows of Qwen3's vocabulary
# (1,216 programs) that arithmetic, not the pass's 19.4 MB read, sets its time. One H200, the
# nucleus step at 32 rows in one process (docs/measurements/2026-11-28-h200, call-4): 8 passes
# of 4 bits 3.459 ms (the passes 284.9 us), 11 of 3 bits 3.441, 16 of 2 bits 3.385 (210.9 us).
# Fewer rows keep 4 bits, unmeasured with narrower digits: there a pass has about one program
# an SM and pays its fixed latency once more per extra pass.
BITS = 4
BITS_MANY = 2
MANY_ROWS = 32
CHUNK = 4096
BLOCK = 256  # tokens a step of a program's loop
WARPS = 4


@triton.jit
def threshold_so_far(part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS: tl.constexpr, CHUNKS_P2: tl.constexpr,
                     NPASS: tl.constexpr, CANDS: tl.constexpr, LAST_SHIFT: tl.constexpr):  # fmt: skip
    """The threshold's bits fixed by passes 0..PASS-1: those of passes 0..PASS-2 from thr
    (rows, NPASS), where the previous pass's first program stored them, and pass PASS-1's digit
    (at bit LAST_SHIFT), the largest candidate whose mass reaches top_p, from its partial masses
    part (rows, NPASS, chunks, CANDS). This pass's first program stores the result for the next.
    (Every program summing all earlier passes' masses again cost 37.3 us a pass against 34.1 at
    32 rows on an H100: docs/measurements/2026-11-28-h100-partials, call-4.)"""
    threshold = tl.zeros([1], dtype=tl.int32)
    if PASS > 1:
        threshold = tl.load(thr_ptr + row * NPASS + PASS - 1 + tl.zeros([1], dtype=tl.int32))
    if PASS > 0:
        c = tl.arange(0, CHUNKS_P2)
        d = tl.arange(0, CANDS)
        at = ((row * NPASS + PASS - 1) * chunks + c)[:, None] * CANDS + d[None, :]
        mass = tl.sum(tl.load(part_ptr + at, mask=(c < chunks)[:, None], other=0.0), axis=0)  # (CANDS,)
        best = tl.maximum(tl.sum((mass >= top_p).to(tl.int32), axis=0) - 1, 0)
        threshold = threshold | (best << LAST_SHIFT)
    if PASS > 0 and PASS < NPASS:
        tl.store(thr_ptr + row * NPASS + PASS + tl.zeros([1], dtype=tl.int32), threshold, mask=chunk == 0)
    return threshold


@triton.jit
def mass_pass(probs_ptr, part_ptr, thr_ptr, vocab, chunks, top_p,
              PASS: tl.constexpr, SHIFT: tl.constexpr, WIDTH: tl.constexpr, CHUNK: tl.constexpr,
              CHUNKS_P2: tl.constexpr, BLOCK: tl.constexpr, NPASS: tl.constexpr, CANDS: tl.constexpr,
              LAST_SHIFT: tl.constexpr):  # fmt: skip
    row, chunk = tl.program_id(0), tl.program_id(1)
    threshold = threshold_so_far(
        part_ptr, thr_ptr, row, chunk, chunks, top_p, PASS, CHUNKS_P2, NPASS, CANDS, LAST_SHIFT
    )  # (1,)
    d = tl.arange(0, CANDS)
    candidates = threshold | (d << SHIFT)  # (CANDS,); digits past 2^WIDTH never pass (see below)
    acc = tl.zeros([BLOCK, CANDS], dtype=tl.float32)  # summed across the block once, after the loop
    for start in range(chunk * CHUNK, tl.minimum(chunk * CHUNK + CHUNK, vocab), BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = cols < vocab
        p = tl.load(probs_ptr + row.to(tl.int64) * vocab + cols, mask=ok, other=0.0)
        bits = p.to(tl.int32, bitcast=True)
        above = (bits[:, None] >= candidates[None, :]) & ok[:, None]  # (BLOCK, CANDS)
        acc += tl.where(above, p[:, None], 0.0)
    mass = tl.sum(acc, axis=0)
    # a narrower last pass (3 bits at BITS = 4) has fewer candidates: the others get no mass, so
    # they never reach top_p
    mass = tl.where(d < (1 << WIDTH), mass, 0.0)
    tl.store(part_ptr + ((row * NPASS + PASS) * chunks + chunk) * CANDS + d, mass)


@triton.jit
def keep_kernel(probs_ptr, part_ptr, thr_ptr, keep_ptr, vocab, chunks, top_p,
                CHUNK: tl.constexpr, CHUNKS_P2: tl.constexpr, BLOCK: tl.constexpr, NPASS: tl.constexpr,
                CANDS: tl.constexpr, LAST_SHIFT: tl.constexpr):  # fmt: skip
    row, chunk = tl.program_id(0), tl.program_id(1)
    threshold = threshold_so_far(
        part_ptr, thr_ptr, row, chunk, chunks, top_p, NPASS, CHUNKS_P2, NPASS, CANDS, LAST_SHIFT
    )
    for start in range(chunk * CHUNK, tl.minimum(chunk * CHUNK + CHUNK, vocab), BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = cols < vocab
        at = row.to(tl.int64) * vocab + cols
        bits = tl.load(probs_ptr + at, mask=ok, other=0.0).to(tl.int32, bitcast=True)
        tl.store(keep_ptr + at, bits >= threshold, mask=ok)


@triton.jit
def draw_kernel(probs_ptr, noise_ptr, part_ptr, thr_ptr, best_ptr, index_ptr, vocab, chunks, top_p,
                CHUNK: tl.constexpr, CHUNKS_P2: tl.constexpr, BLOCK: tl.constexpr, NPASS: tl.constexpr,
                CANDS: tl.constexpr, LAST_SHIFT: tl.constexpr):  # fmt: skip
    """Per (row, chunk): the largest p / E over the chunk's kept tokens and its first index, into
    best (rows, chunks) float32 and index (rows, chunks) int32; the
    exponential trick's argmax restricted to the top-p set. Dropped tokens score -1, below every
    kept one (p / E >= 0); each lane keeps its first maximum, the lanes' tie goes to the smallest
    index, as torch.argmax picks the first."""
    row, chunk = tl.program_id(0), tl.program_id(1)
    threshold = threshold_so_far(
        part_ptr, thr_ptr, row, chunk, chunks, top_p, NPASS, CHUNKS_P2, NPASS, CANDS, LAST_SHIFT
    )
    best = tl.full([BLOCK], -1.0, dtype=tl.float32)
    best_at = tl.zeros([BLOCK], dtype=tl.int32)
    for start in range(chunk * CHUNK, tl.minimum(chunk * CHUNK + CHUNK, vocab), BLOCK):
        cols = start + tl.arange(0, BLOCK)
        ok = cols < vocab
        at = row.to(tl.int64) * vocab + cols
        p = tl.load(probs_ptr + at, mask=ok, other=0.0)
        e = tl.load(noise_ptr + at, mask=ok, other=1.0)
        kept = ok & (p.to(tl.int32, bitcast=True) >= threshold)
        score = tl.where(kept, tl.div_rn(p, e), -1.0)  # rounded as PyTorch's division rounds
        take = score > best
        best = tl.where(take, score, best)
        best_at = tl.where(take, cols, best_at)
    top = tl.max(best, axis=0)
    first = tl.min(tl.where(best == top, best_at, vocab), axis=0)
    tl.store(best_ptr + row * chunks + chunk, top)
    tl.store(index_ptr + row * chunks + chunk, first)


def _search(flat: torch.Tensor, top_p: float):
    """The passes over flat (rows, vocab) float32 probabilities: (part, thr, the settings of the
    kernel after them)."""
    rows, vocab = flat.shape
    bits = BITS_MANY if rows >= MANY_ROWS else BITS
    chunks, plan, cands = triton.cdiv(vocab, CHUNK), passes(bits), 1 << bits
    part = torch.empty(rows, len(plan), chunks, cands, dtype=torch.float32, device=flat.device)
    thr = torch.empty(rows, len(plan), dtype=torch.int32, device=flat.device)  # see threshold_so_far (1.. used)
    common = dict(CHUNK=CHUNK, CHUNKS_P2=triton.next_power_of_2(chunks), BLOCK=BLOCK, NPASS=len(plan), CANDS=cands)
    last_shift = 0  # of the pass before: pass 0 has none
    for i, (shift, width) in enumerate(plan):
        mass_pass[(rows, chunks)](
            flat, part, thr, vocab, chunks, top_p, PASS=i, SHIFT=shift, WIDTH=width, LAST_SHIFT=last_shift,
            num_warps=WARPS, **common,
        )  # fmt: skip
        last_shift = shift
    return part, thr, dict(common, LAST_SHIFT=last_shift, num_warps=WARPS)


def top_p_keep(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """probs (..., vocab) float32 -> bool (..., vocab): the passes and a mask launch, no host
    synchronisation."""
    vocab = probs.shape[-1]
    flat = probs.reshape(-1, vocab).contiguous()
    part, thr, common = _search(flat, top_p)
    rows, chunks = part.shape[0], part.shape[2]
    keep = torch.empty(rows, vocab, dtype=torch.bool, device=probs.device)
    keep_kernel[(rows, chunks)](flat, part, thr, keep, vocab, chunks, top_p, **common)
    return keep.view(probs.shape)


def top_p_draw(probs: torch.Tensor, noise: torch.Tensor, top_p: float) -> torch.Tensor:
    """argmax(probs * top_p_keep(probs, top_p) / noise) over the last dimension, without the mask,
    the product and the quotient as tensors of their own: probs and noise (..., vocab) float32 ->
    token ids (...). The passes, one draw pass, then the argmax over the chunks' winners."""
    vocab = probs.shape[-1]
    flat = probs.reshape(-1, vocab).contiguous()
    part, thr, common = _search(flat, top_p)
    rows, chunks = part.shape[0], part.shape[2]
    best = torch.empty(rows, chunks, dtype=torch.float32, device=probs.device)
    index = torch.empty(rows, chunks, dtype=torch.int32, device=probs.device)
    noise = noise.reshape(-1, vocab).contiguous()
    draw_kernel[(rows, chunks)](flat, noise, part, thr, best, index, vocab, chunks, top_p, **common)
    winner = best.argmax(-1, keepdim=True)  # the first chunk holding the maximum: (rows, 1)
    return index.gather(1, winner)[:, 0].long().view(probs.shape[:-1])
