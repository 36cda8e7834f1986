"""Beam search on the device: transformers' algorithm (its vectorised `_beam_search`) with static
shapes, so each step is a captured graph and the host never waits.

Per step, for `prompts` prompts of `beams` beams each (rows = prompts x beams):
  scores  = log_softmax(logits) (EOS suppressed in fixed-length runs) + each beam's running score
  keep    = the top K = max(2, 1 + n_eos) x beams continuations over beams x vocab
  running = the best `beams` of those that did not just finish (EOS, or the length limit)
  done    = the best `beams` hypotheses so far, a finished one scored sum / length ** penalty
and the KV cache rows are reordered to follow each running beam's parent. transformers' stopping
rule (no running beam can beat the worst finished one, with its length heuristic) is computed on
the device; once it holds, every later step leaves the state unchanged.
"""

from __future__ import annotations

import torch

from infercomp.fast.decode import RowState
from infercomp.fast.runtime import KVCache, Runtime, forward

NEG = -1.0e9  # transformers' "impossible" score


class BeamState:
    """Device state of one beam search over `prompts` x `beams` rows, updated in place."""

    def __init__(self, prompts: int, beams: int, keep: int, max_new: int, device):
        self.prompts, self.beams, self.keep, self.max_new = prompts, beams, keep, max_new
        f = dict(device=device)
        self.run_seq = torch.zeros(prompts, beams, max_new, dtype=torch.long, **f)  # running beams' tokens
        self.run_score = torch.zeros(prompts, beams, **f)  # their summed log-probs
        self.parents = torch.zeros(prompts * beams, dtype=torch.long, **f)  # flat row each beam came from
        self.seq = torch.zeros(prompts, beams, max_new, dtype=torch.long, **f)  # best finished hypotheses
        self.score = torch.zeros(prompts, beams, **f)
        self.length = torch.zeros(prompts, beams, dtype=torch.long, **f)
        self.finished = torch.zeros(prompts, beams, dtype=torch.bool, **f)
        self.improvable = torch.ones(prompts, 1, dtype=torch.bool, **f)  # transformers' early-stop flag
        self.active = torch.ones((), dtype=torch.bool, **f)  # the whole search still runs
        self.step = torch.zeros((), dtype=torch.long, **f)  # new tokens so far
        self.top_mask = torch.arange(keep, **f) < beams  # (K,): only the top `beams` may finish

    def reset(self, pad: int) -> None:
        self.run_seq.fill_(pad)
        self.seq.fill_(pad)
        self.run_score.zero_()
        self.run_score[:, 1:] = NEG  # at the first step only beam 0's continuations count
        self.score.fill_(NEG)
        self.length.zero_()
        self.finished.zero_()
        self.improvable.fill_(True)
        self.active.fill_(True)
        self.step.zero_()

    def results(self, returned: int) -> list[tuple[list[int], float]]:
        """The best `returned` hypotheses per prompt, prompts in order: (tokens, score)."""
        seq, score, length = self.seq.cpu(), self.score.cpu(), self.length.cpu()
        out = []
        for p in range(self.prompts):
            for j in range(returned):
                out.append((seq[p, j, : int(length[p, j])].tolist(), float(score[p, j])))
        return out


def _gather(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t (P, N, ...) gathered along dim 1 by index (P, M) -> (P, M, ...)."""
    while index.dim() < t.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(t, index, dim=1)


def beam_update(
    bs: BeamState, logits: torch.Tensor, eos: torch.Tensor, fixed_length: bool, penalty: float, vocab: int
) -> None:
    """One step of transformers' beam search from the running beams' logits (rows, vocab)."""
    p, nb, k = bs.prompts, bs.beams, bs.keep
    t = bs.step
    logp = torch.log_softmax(logits, dim=-1)
    if fixed_length:
        logp = logp.index_fill(-1, eos, float("-inf"))
    total = (logp.view(p, nb, vocab) + bs.run_score[:, :, None]).view(p, nb * vocab)
    top_score, top_index = torch.topk(total, k)  # (P, K)
    parent = top_index // vocab
    token = top_index % vocab
    cand_seq = _gather(bs.run_seq, parent)  # (P, K, max_new)
    cand_seq.scatter_(2, t.expand(p, k, 1), token[:, :, None])
    hits = torch.isin(token, eos) | (t + 1 >= bs.max_new)  # (P, K): finished with this token
    # Running beams: the best `nb` candidates that did not finish.
    run_pick = torch.topk(top_score + hits.float() * NEG, nb).indices  # (P, nb)
    new_run_seq = _gather(cand_seq, run_pick)
    new_run_score = _gather(top_score + hits.float() * NEG, run_pick)
    flat_parent = parent + torch.arange(p, device=parent.device)[:, None] * nb
    new_parents = _gather(flat_parent, run_pick).reshape(-1)
    # Finished hypotheses: merge the candidates that just finished (top nb only) into the best nb.
    just = hits & bs.top_mask[None, :]
    cand_score = top_score / ((t + 1).float() ** penalty)
    cand_score = cand_score + (~bs.improvable).float() * NEG + (~just).float() * NEG
    merged_score = torch.cat([bs.score, cand_score], dim=1)
    pick = torch.topk(merged_score, nb).indices
    new_seq = _gather(torch.cat([bs.seq, cand_seq], dim=1), pick)
    new_score = _gather(merged_score, pick)
    new_len = _gather(torch.cat([bs.length, (t + 1).expand(p, k)], dim=1), pick)
    new_fin = _gather(torch.cat([bs.finished, just], dim=1), pick)
    # transformers' heuristic (early_stopping=False): can the best running beam, at the current
    # length, still beat the worst finished hypothesis?
    best_running = new_run_score[:, :1] / ((t + 1).float() ** penalty)
    worst_done = torch.where(new_fin, new_score.min(dim=1, keepdim=True).values, torch.full_like(new_score, NEG))
    new_improvable = bs.improvable & (best_running > worst_done).any(dim=-1, keepdim=True)
    still = new_improvable.any() & ~hits.all()
    # Commit, unless the search had already stopped (then this step changes nothing).
    on = bs.active
    for old, new in (
        (bs.run_seq, new_run_seq),
        (bs.run_score, new_run_score),
        (bs.parents, new_parents),
        (bs.seq, new_seq),
        (bs.score, new_score),
        (bs.length, new_len),
        (bs.finished, new_fin),
        (bs.improvable, new_improvable),
    ):
        old.copy_(torch.where(on, new, old))
    bs.active.copy_(on & still)
    bs.step.add_(on.long())


def beam_bodies(
    rt: Runtime,
    model,
    cache: KVCache,
    rows: RowState,
    bs: BeamState,
    logits_buf: torch.Tensor,
    eos: torch.Tensor,
    fixed_length: bool,
    penalty: float,
):
    """Two captured steps: `update` (choose, reorder the cache, set the next tokens) and `advance`
    (the forward pass of the running beams' newest tokens into `logits_buf`)."""
    vocab = logits_buf.shape[-1]
    row_ids = rows.row_ids[:, None]
    last_slot = cache.slots - 1

    def update() -> None:
        beam_update(bs, logits_buf, eos, fixed_length, penalty, vocab)
        cache.reorder(bs.parents)
        newest = (bs.step - 1).clamp(min=0).expand(bs.prompts, bs.beams, 1)
        rows.tok.copy_(bs.run_seq.gather(2, newest).reshape(-1))
        rows.pos.copy_((rows.lens + bs.step - 1).clamp(max=last_slot))

    def advance() -> None:
        logits = forward(rt, model, cache, rows.tok[:, None], rows.pos[:, None], row_ids, visible=rows.visible)
        logits_buf.copy_(logits[:, 0])

    return update, advance
