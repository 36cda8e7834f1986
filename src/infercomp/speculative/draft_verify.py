"""Draft-and-verify decoding for ragged batches, with dynamic or static KV caches.

Each round, for every row of the batch:
  1. the drafter proposes up to k tokens (an assistant model, or n-grams from the context);
  2. the main model scores the row's pending token plus the drafts in one forward pass;
  3. the longest acceptable prefix of the drafts is kept, plus one token from the main model
     (the correction at the first rejection, or a bonus token when all were accepted).

Acceptance rule. Greedy: a draft is accepted when it equals the main model's argmax, so the
output is the main model's greedy output. Sampling: with p and q the main and draft
distributions after the same temperature / top-k / top-p warping, draft x is accepted with
probability min(1, p(x) / q(x)); at the first rejection the token is drawn from
normalize(max(0, p - q)). Then every emitted token is distributed exactly as p (the standard
speculative sampling theorem), so the output follows the main model's own sampling.

Ragged rows. Rows accept different numbers of tokens, so every row keeps its own logical
positions (RoPE) while all rows write their keys and values into the same cache slots. Each
call feeds a (rows, q) block, right-aligned: a row with fewer tokens than q gets masked holes on
its left. After verification, a row's rejected drafts are masked out (rolled back); slots that
every row rejected are cut from the cache (DynamicCache.crop), or, with a static cache, simply
overwritten by the next write (the layers' write position moves back).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import torch

from infercomp.measure.memory import cache_tensor_bytes
from infercomp.measure.timing import synchronize
from infercomp.speculative.accounting import SpecStats, best_draft_length, expected_accepted_length, predicted_speedup

__all__ = [
    "ModelDrafter",
    "PromptLookupDrafter",
    "Sampling",
    "SpecOutput",
    "SpecStats",
    "best_draft_length",
    "expected_accepted_length",
    "predicted_speedup",
    "speculative_generate",
    "warp",
]


@dataclass
class Sampling:
    do_sample: bool
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0


def warp(logits: torch.Tensor, s: Sampling) -> torch.Tensor:
    """Probabilities after temperature, top-k, then top-p (transformers' order). (rows, vocab)"""
    logits = logits.float() / s.temperature
    if s.top_k and s.top_k < logits.size(-1):
        kth = torch.topk(logits, s.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        remove_sorted = cum <= (1 - s.top_p)
        remove_sorted[..., -1:] = False  # always keep the most likely token
        remove = remove_sorted.scatter(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits.softmax(-1)


class SequenceCache:
    """One model's KV cache over a batch of ragged rows: slot validity, positions, rollback."""

    def __init__(self, model, rows: int, kind: str, max_slots: int, device):
        from transformers import DynamicCache, StaticCache

        self.model = model
        self.kind = kind
        self.device = device
        if kind == "static":
            self.cache = StaticCache(config=model.config, max_cache_len=max_slots)
        else:
            self.cache = DynamicCache(config=model.config)
        self.max_slots = max_slots
        self.mask = torch.zeros(rows, 0, dtype=torch.long, device=device)  # (rows, slots): 1 = real token
        self.next_pos = torch.zeros(rows, dtype=torch.long, device=device)  # logical position per row
        self.seen = [0] * rows  # how many of each row's tokens are in the cache

    @property
    def slots(self) -> int:
        return self.mask.shape[1]

    @torch.inference_mode()
    def feed(self, per_row: list[list[int]], pad_id: int) -> torch.Tensor:
        """Append each row's tokens (right-aligned) and return logits (rows, q, vocab)."""
        q = max(len(t) for t in per_row)
        rows = len(per_row)
        ids = torch.full((rows, q), pad_id, dtype=torch.long)
        real = torch.zeros((rows, q), dtype=torch.long)
        for r, toks in enumerate(per_row):
            if toks:
                ids[r, q - len(toks) :] = torch.tensor(toks)
                real[r, q - len(toks) :] = 1
            self.seen[r] += len(toks)
        ids, real = ids.to(self.device), real.to(self.device)
        positions = self.next_pos[:, None] + real.cumsum(1) - 1
        positions = positions.clamp(min=0) * real  # holes get position 0; they are masked anyway
        self.next_pos = self.next_pos + real.sum(1)
        start = self.slots
        self.mask = torch.cat([self.mask, real], dim=1)
        mask = self.mask
        if self.kind == "static":  # a full-length mask: slots past the write position stay masked
            mask = torch.nn.functional.pad(self.mask, (0, self.max_slots - self.slots))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # the cache keyword's name varies by release
            out = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=self.cache,
                cache_position=torch.arange(start, start + q, device=self.device),
                use_cache=True,
            )
        return out.logits

    def roll_back(self, rejected: list[int]) -> None:
        """Mask each row's last `rejected[r]` slots; cut the slots every row rejected."""
        for r, n in enumerate(rejected):
            if n:
                self.mask[r, self.slots - n :] = 0
                self.next_pos[r] -= n
                self.seen[r] -= n
        common = min(rejected)
        if common:
            keep = self.slots - common
            self.mask = self.mask[:, :keep]
            if self.kind == "dynamic":
                self.cache.crop(-common)  # negative: remove that many (the form every 5.x release takes)
            else:
                # Static layers write at their own running length: move it back, and the next
                # feed overwrites the rejected slots in place (no reallocation).
                for layer in self.cache.layers:
                    layer.cumulative_length.sub_(common)


@dataclass
class SpecOutput:
    tokens: list[list[int]]  # per row: new tokens (up to and including EOS)
    stats: SpecStats
    ttft_s: float
    seconds: float
    kv_cache_bytes: int | None = None  # the main and draft caches' tensors at the end of the call


class ModelDrafter:
    """Drafts with an assistant model, greedily or by sampling from its warped distribution."""

    uses_cache = True

    def __init__(self, model):
        self.model = model


class PromptLookupDrafter:
    """Drafts by finding the row's last n-gram earlier in its own context (prompt + output) and
    proposing what followed it. No model: q is a point mass on the proposal."""

    uses_cache = False

    def __init__(self, max_ngram: int = 3, min_ngram: int = 1):
        self.max_ngram, self.min_ngram = max_ngram, min_ngram

    def propose(self, seq: list[int], k: int) -> list[int]:
        for n in range(self.max_ngram, self.min_ngram - 1, -1):
            if len(seq) <= n:
                continue
            tail = seq[-n:]
            # Most recent earlier occurrence first.
            for start in range(len(seq) - n - 1, -1, -1):
                if seq[start : start + n] == tail:
                    follow = seq[start + n : start + n + k]
                    if follow:
                        return follow
        return []


@torch.inference_mode()
def speculative_generate(
    main,
    drafter,
    prompts: list[list[int]],
    max_new_tokens: int,
    sampling: Sampling,
    k: int,
    eos_ids: set[int],
    pad_id: int,
    cache_kind: str = "dynamic",
    fixed_length: bool = False,
    adaptive: bool = False,
    device: str = "cpu",
    generator: torch.Generator | None = None,
) -> SpecOutput:
    """Generate up to max_new_tokens per prompt by draft-and-verify (see the module docstring)."""
    rows = len(prompts)
    k_max = max(k, 2 * k) if adaptive else k
    slots = max(len(p) for p in prompts) + (max_new_tokens + 2) * (k_max + 1)
    main_cache = SequenceCache(main, rows, cache_kind, slots, device)
    model_drafter = isinstance(drafter, ModelDrafter)
    draft_cache = SequenceCache(drafter.model, rows, cache_kind, slots, device) if model_drafter else None
    seqs = [list(p) for p in prompts]
    new: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    stats = SpecStats(histogram=[0] * (k_max + 1))
    suppress = list(eos_ids) if fixed_length else []

    def probs(logits: torch.Tensor) -> torch.Tensor:
        if suppress:
            logits = logits.clone()
            logits[..., suppress] = float("-inf")
        return warp(logits, sampling) if sampling.do_sample else logits.float()

    def pick(dist: torch.Tensor) -> int:
        if sampling.do_sample:
            return int(torch.multinomial(dist, 1, generator=generator))
        return int(dist.argmax())

    def emit(r: int, tokens: list[int]) -> None:
        for t in tokens:
            if done[r]:
                return
            new[r].append(t)
            seqs[r].append(t)
            if (t in eos_ids and not fixed_length) or len(new[r]) >= max_new_tokens:
                done[r] = True

    synchronize(device)
    start = time.perf_counter()
    # Prefill: the main model reads each prompt; its next token is the first pending token.
    logits = main_cache.feed([p for p in prompts], pad_id)[:, -1]
    first = [pick(probs(logits[r])) for r in range(rows)]
    if model_drafter:
        draft_cache.feed([p for p in prompts], pad_id)
    for r in range(rows):
        emit(r, [first[r]])
    synchronize(device)
    ttft = time.perf_counter() - start

    alpha_hat = 0.7  # prior acceptance for the adaptive draft length, replaced by measurements
    cost_ratio = 0.2
    while not all(done):
        stats.rounds += 1
        stats.draft_lengths.append(k)
        t0 = time.perf_counter()
        drafts, draft_q = _draft(drafter, draft_cache, seqs, k, probs, pick, pad_id, stats)
        synchronize(device)
        t1 = time.perf_counter()
        # Verify: pending token + drafts, one main-model pass. Row r's last len+1 positions hold
        # the distributions for its drafts and the token after them.
        feed = [seqs[r][main_cache.seen[r] :] + drafts[r] for r in range(rows)]
        logits = main_cache.feed(feed, pad_id)
        stats.verify_steps += 1
        synchronize(device)
        t2 = time.perf_counter()
        stats.draft_time_s += t1 - t0
        stats.verify_time_s += t2 - t1

        main_rejected, draft_rejected = [], []
        for r in range(rows):
            d = drafts[r]
            p = probs(logits[r, logits.shape[1] - len(d) - 1 :])  # (len(d) + 1, vocab)
            n, extra = _accept(d, p, draft_q[r], sampling, pick, generator)
            if not done[r]:
                stats.drafted += len(d)
                stats.accepted += n
                stats.histogram[n] += 1
                emit(r, d[:n] + [extra])
            main_rejected.append(len(d) - n)
            if model_drafter:
                # The drafter read its own drafts except the last one.
                fed = max(0, len(d) - 1)
                draft_rejected.append(max(0, fed - n))
        main_cache.roll_back(main_rejected)
        if model_drafter:
            draft_cache.roll_back(draft_rejected)
        if adaptive and stats.drafted:
            alpha_hat = min(stats.accepted / stats.drafted, 0.99)
            if stats.draft_steps and stats.verify_steps:
                cost_ratio = (stats.draft_time_s / stats.draft_steps) / (stats.verify_time_s / stats.verify_steps)
            k = best_draft_length(alpha_hat, cost_ratio, k_max)
    synchronize(device)
    seconds = time.perf_counter() - start
    caches = [main_cache] + ([draft_cache] if model_drafter else [])
    sizes = [cache_tensor_bytes(c.cache) for c in caches]
    kv = None if None in sizes else sum(sizes)
    return SpecOutput(tokens=new, stats=stats, ttft_s=ttft, seconds=seconds, kv_cache_bytes=kv)


def _draft(drafter, cache, seqs, k, probs, pick, pad_id, stats):
    """Up to k draft tokens per row, and their draft distributions (None for point proposals)."""
    rows = len(seqs)
    if not isinstance(drafter, ModelDrafter):
        return [drafter.propose(seqs[r], k) for r in range(rows)], [None] * rows
    drafts: list[list[int]] = [[] for _ in range(rows)]
    qs: list[list[torch.Tensor]] = [[] for _ in range(rows)]
    feed = [seqs[r][cache.seen[r] :] for r in range(rows)]
    for step in range(k):
        logits = cache.feed(feed, pad_id)[:, -1]
        stats.draft_steps += 1
        for r in range(rows):
            q = probs(logits[r])
            tok = pick(q)
            drafts[r].append(tok)
            qs[r].append(q)
        if step < k - 1:
            feed = [[drafts[r][-1]] for r in range(rows)]
    return drafts, [torch.stack(q) for q in qs]


def _accept(draft, p, q, sampling: Sampling, pick, generator) -> tuple[int, int]:
    """How many drafts to keep, and the main model's token that follows them.

    p: (len(draft) + 1, vocab) main distributions (logits when greedy); q: (len(draft), vocab)
    draft distributions, or None for a point proposal (prompt lookup).
    """
    if not sampling.do_sample:
        n = 0
        while n < len(draft) and int(p[n].argmax()) == draft[n]:
            n += 1
        return n, int(p[n].argmax())
    for i, x in enumerate(draft):
        px = float(p[i, x])
        qx = 1.0 if q is None else float(q[i, x])
        # q >= p: accept with probability p/q; q < p: always accept.
        if qx > 0 and torch.rand((), generator=generator).item() < min(1.0, px / qx):
            continue
        # Rejected: draw from the part of p that q under-covers.
        if q is None:
            residual = p[i].clone()
            residual[x] = 0.0
        else:
            residual = (p[i] - q[i]).clamp(min=0)
        total = float(residual.sum())
        residual = residual / total if total > 0 and math.isfinite(total) else p[i]
        return i, pick(residual)
    return len(draft), pick(p[len(draft)])
