"""Draft-and-verify on the device: k draft steps, one verify pass, acceptance as tensor operations.

State per row r: the main cache holds positions 0..L_r-1; the pending token (the last one emitted,
not yet read by the main model) sits at position L_r in `seq`, the row's whole sequence. A round:
  draft   k tokens d_1..d_k (a draft model's k steps, or an n-gram found earlier in `seq`);
  verify  the main model reads [pending, d_1..d_k] at L_r..L_r+k in one pass: k+1 distributions;
  accept  greedy: the longest prefix with d_i = argmax p_i; sampling: d_i kept with probability
          min(1, p_i(d_i) / q_i(d_i)), the first rejection replaced by a draw from
          normalize(max(0, p_i - q_i)), and a bonus token from p_k when all are kept;
  advance L_r += accepted + 1; the new pending token is the correction or bonus.
Rejected slots are not erased: moving L_r back is the rollback, later writes overwrite them.

The draft model's cache lags by one: its first step each round re-reads the token before the
pending one together with the pending one (q = 2), which fills the slot a fully accepted round
left empty and rewrites an identical entry otherwise. So every round has the same shapes.

The verify pass always has k_max + 1 queries; a round that drafts fewer (adaptive k, or an n-gram
shorter than k) marks the missing drafts invalid, and an invalid draft is always rejected (q = 0).
"""

from __future__ import annotations

import torch

from infercomp.fast.decode import Limits, RowState
from infercomp.fast.runtime import KVCache, Runtime, forward
from infercomp.fast.sampling import Choice, distribution, sample


class SpecState(RowState):
    """RowState plus the sequence buffer, the drafts and the counters of a speculative call."""

    def __init__(self, rows: int, width: int, slots: int, k_max: int, vocab: int, sampled: bool, device):
        super().__init__(rows, width, device)
        f = dict(device=device)
        self.k_max = k_max
        self.seq = torch.zeros(rows, slots, dtype=torch.long, **f)  # prompt + emitted tokens per row
        self.drafts = torch.zeros(rows, k_max, dtype=torch.long, **f)
        self.valid = torch.zeros(rows, k_max, dtype=torch.bool, **f)  # draft i was proposed
        # q_i over the vocabulary for sampled model drafts (None otherwise): (rows, k_max, vocab)
        self.q = torch.zeros(rows, k_max, vocab, **f) if sampled else None
        self.k_now = torch.zeros((), dtype=torch.long, **f)  # drafts this round (adaptive k)
        self.drafted = torch.zeros((), dtype=torch.long, **f)
        self.accepted = torch.zeros((), dtype=torch.long, **f)
        self.histogram = torch.zeros(k_max + 1, dtype=torch.long, **f)  # row-rounds by drafts kept
        self.rounds = torch.zeros((), dtype=torch.long, **f)

    def reset_counters(self) -> None:
        for t in (self.drafted, self.accepted, self.histogram, self.rounds):
            t.zero_()


def model_draft_bodies(rt: Runtime, draft, cache: KVCache, st: SpecState, choice: Choice, lim: Limits):
    """The draft model's steps: `first` (q = 2, see the module docstring) and `next` (q = 1).
    Step i writes d_i into st.drafts[:, i] (i counted in st.k_now) and q_i when sampling."""
    rows = st.row_ids[:, None]
    suppress = lim.eos if lim.fixed_length else None
    two = torch.arange(2, device=st.seq.device)[None, :]
    sampled = choice.do_sample  # greedy drafts need only the logits' argmax: model dtype will do

    def propose(logits: torch.Tensor) -> None:  # logits (B, vocab), the step's own
        dist = distribution(logits, choice, suppress, fresh=True)
        tok = sample(dist) if choice.do_sample else dist.argmax(-1)
        i = st.k_now.expand(st.rows, 1)
        st.drafts.scatter_(1, i, tok[:, None])
        st.valid.scatter_(1, i, torch.ones_like(tok[:, None], dtype=torch.bool))
        if st.q is not None:
            st.q.scatter_(1, i[:, :, None].expand(-1, 1, dist.shape[-1]), dist[:, None, :])
        st.k_now.add_(1)

    def first() -> None:
        st.valid.zero_()
        st.k_now.zero_()
        pos = (st.pos[:, None] - 1 + two).clamp(min=0)  # (B, 2): the slot before the pending token, and its own
        ids = st.seq.gather(1, pos)
        logits = forward(rt, draft, cache, ids, pos, rows.expand(-1, 2), st.pos.new_ones(st.rows, 1), float32=sampled)
        propose(logits[:, 0])

    def next_() -> None:
        pos = (st.pos + st.k_now)[:, None].clamp(max=cache.slots - 1)  # d_{i-1}'s position
        ids = st.drafts.gather(1, (st.k_now - 1).expand(st.rows, 1))
        propose(forward(rt, draft, cache, ids, pos, rows, float32=sampled)[:, 0])

    return first, next_


def lookup_body(st: SpecState, max_ngram: int, k: int):
    """Prompt lookup: the most recent earlier occurrence of the row's last n tokens (n from
    max_ngram down to 1) proposes the tokens that followed it, up to k."""
    rows, slots = st.seq.shape
    idx = torch.arange(slots, device=st.seq.device)

    def body() -> None:
        st.valid.zero_()
        st.k_now.fill_(k)
        end = st.pos + 1  # the sequence so far, pending token included: seq[:, :end]
        found = torch.zeros(rows, dtype=torch.bool, device=st.seq.device)
        start = torch.zeros(rows, dtype=torch.long, device=st.seq.device)  # of the follow-up tokens
        for n in range(max_ngram, 0, -1):
            tail = st.seq.gather(1, (end[:, None] - n + torch.arange(n, device=idx.device)).clamp(min=0))  # (B, n)
            windows = st.seq.unfold(1, n, 1)  # (B, slots - n + 1, n)
            match = (windows == tail[:, None, :]).all(-1)
            s = idx[: windows.shape[1]]
            match &= (s[None, :] + n < end[:, None]) & (end[:, None] > n)  # earlier occurrences only
            best = torch.where(match, s[None, :], -1).max(dim=1).values  # most recent, or -1
            take = ~found & (best >= 0)
            start = torch.where(take, best + n, start)
            found |= take
        offs = torch.arange(k, device=idx.device)[None, :]
        src = (start[:, None] + offs).clamp(max=slots - 1)
        st.drafts[:, :k] = st.seq.gather(1, src)
        st.valid[:, :k] = found[:, None] & (start[:, None] + offs < end[:, None])

    return body


def verify_body(rt: Runtime, main, cache: KVCache, st: SpecState, choice: Choice, lim: Limits):
    """The main model reads [pending, d_1..d_kmax]; keep the accepted drafts and one more token."""
    k = st.k_max
    rows = st.row_ids[:, None].expand(-1, k + 1)
    offs = torch.arange(k + 1, device=st.seq.device)[None, :]
    suppress = lim.eos if lim.fixed_length else None
    last = cache.slots - 1

    def body() -> None:
        pos = (st.pos[:, None] + offs).clamp(max=last)  # (B, k+1)
        ids = torch.cat([st.tok[:, None], st.drafts], dim=1)
        logits = forward(rt, main, cache, ids, pos, rows, float32=choice.do_sample)
        p = distribution(logits, choice, suppress, fresh=True)  # (B, k+1, vocab)
        n, extra = accept(p, st, choice)
        commit(st, n, extra, lim, last)

    return body


def accept(p: torch.Tensor, st: SpecState, choice: Choice) -> tuple[torch.Tensor, torch.Tensor]:
    """How many drafts each row keeps (B,), and the token after them (B,).
    p: (B, k+1, vocab) main distributions (logits when greedy)."""
    k = st.k_max
    d = st.drafts
    if not choice.do_sample:
        target = p.argmax(-1)  # (B, k+1)
        ok = (target[:, :k] == d) & st.valid
        n = ok.long().cumprod(1).sum(1)
        return n, target.gather(1, n[:, None])[:, 0]
    px = p[:, :k].gather(2, d[:, :, None])[:, :, 0]  # (B, k) p_i(d_i)
    if st.q is None:  # point proposals: q_i(d_i) = 1 where proposed, q_i = 0 where not
        qx = st.valid.float()
    else:
        qx = st.q.gather(2, d[:, :, None])[:, :, 0] * st.valid
    u = torch.rand_like(px)
    ok = (qx > 0) & (u < (px / qx.clamp(min=1e-30)).clamp(max=1.0))
    n = ok.long().cumprod(1).sum(1)  # (B,)
    # The distribution of the token after the kept drafts: the residual at a rejection, p_k at the end.
    p_n = p.gather(1, n[:, None, None].expand(-1, 1, p.shape[-1]))[:, 0]  # (B, vocab)
    at = n.clamp(max=k - 1)[:, None]
    if st.q is None:
        q_n = torch.zeros_like(p_n).scatter_(1, d.gather(1, at), st.valid.gather(1, at).float())
    else:
        q_n = st.q.gather(1, at[:, :, None].expand(-1, 1, p.shape[-1]))[:, 0] * st.valid.gather(1, at)
    residual = (p_n - q_n).clamp(min=0)
    total = residual.sum(-1, keepdim=True)
    residual = torch.where(total > 0, residual / total.clamp(min=1e-30), p_n)
    rejected = (n < k)[:, None]
    return n, sample(torch.where(rejected, residual, p_n))


def commit(st: SpecState, n: torch.Tensor, extra: torch.Tensor, lim: Limits, last_slot: int) -> None:
    """Emit d_1..d_n and `extra` per running row, stopping at EOS or max_new; advance the row."""
    k = st.k_max
    cols = torch.arange(k + 1, device=n.device)[None, :]
    toks = torch.cat([st.drafts, extra[:, None]], dim=1)  # (B, k+1)
    toks = toks.scatter(1, n[:, None], extra[:, None])  # the token after the kept drafts
    keep = (cols <= n[:, None]) & ~st.done[:, None]
    keep &= st.count[:, None] + cols < lim.max_new
    if not lim.fixed_length:
        eos = torch.isin(toks, lim.eos)
        after_eos = (eos.long().cumsum(1) - eos.long()) > 0  # a token after an EOS of this round
        keep &= ~after_eos
    got = keep.long().sum(1)
    running = ~st.done
    # Counters, for the running rows only.
    st.rounds.add_(running.any().long())
    st.drafted.add_((st.valid.long().sum(1) * running).sum())
    st.accepted.add_((n * running).sum())
    st.histogram.scatter_add_(0, n, running.long())
    # Tokens out: kept ones at count.., the rest to a trash column at the end.
    width = st.out.shape[1]
    dest = torch.where(keep, st.count[:, None] + cols, width - 1)
    st.out.scatter_(1, dest, toks)
    seq_dest = torch.where(keep, (st.pos[:, None] + 1 + cols).clamp(max=last_slot), last_slot)
    st.seq.scatter_(1, seq_dest, toks)
    st.count.add_(got)
    finished = st.count >= lim.max_new
    if not lim.fixed_length:
        finished |= (torch.isin(toks, lim.eos) & keep).any(1)
    # Advance: the pending token moves to the last emitted one (the main cache now holds the old
    # pending token and the kept drafts).
    st.pos.add_(torch.where(running, n + 1, 0)).clamp_(max=last_slot - k - 1)
    st.tok.copy_(torch.where(running, st.seq.gather(1, st.pos[:, None])[:, 0], st.tok))
    st.done |= finished
