"""What a draft-and-verify call counts (SpecStats), and the standard model of its speed: with
each draft accepted with probability alpha, k drafts per round and a draft step costing c main
steps, a round yields E = (1 - alpha^(k+1)) / (1 - alpha) tokens for k c + 1 main-step times.

Both engines fill SpecStats; the figures of a run (acceptance, predicted speedup) and the
adaptive draft length read the model. Plain Python: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SpecStats:
    """Counts and times of one speculative call, summed over its rows and rounds."""

    rounds: int = 0
    drafted: int = 0
    accepted: int = 0
    histogram: list[int] = field(default_factory=list)  # row-rounds by number of accepted drafts
    draft_time_s: float = 0.0
    verify_time_s: float = 0.0
    draft_steps: int = 0  # drafter forward passes
    verify_steps: int = 0  # main-model forward passes in verification
    draft_lengths: list[int] = field(default_factory=list)  # k used in each round

    def add(self, other: SpecStats) -> None:
        self.rounds += other.rounds
        self.drafted += other.drafted
        self.accepted += other.accepted
        width = max(len(self.histogram), len(other.histogram))
        self.histogram = [
            (self.histogram[i] if i < len(self.histogram) else 0)
            + (other.histogram[i] if i < len(other.histogram) else 0)
            for i in range(width)
        ]
        self.draft_time_s += other.draft_time_s
        self.verify_time_s += other.verify_time_s
        self.draft_steps += other.draft_steps
        self.verify_steps += other.verify_steps
        self.draft_lengths += other.draft_lengths


def expected_accepted_length(alpha: float, k: int) -> float:
    """Tokens per round when each draft is accepted with probability alpha: (1 - a^(k+1)) / (1 - a)."""
    if alpha >= 1.0:
        return k + 1.0
    return (1 - alpha ** (k + 1)) / (1 - alpha)


def predicted_speedup(alpha: float, k: int, cost_ratio: float) -> float:
    """Speedup over plain decoding: E / (k c + 1), c = draft step time / main step time."""
    return expected_accepted_length(alpha, k) / (k * cost_ratio + 1)


def best_draft_length(alpha: float, cost_ratio: float, k_max: int) -> int:
    return max(range(1, k_max + 1), key=lambda k: predicted_speedup(alpha, k, cost_ratio))
