"""Checks of the embedded model pair: does it write English, and does the assistant agree?

Both are used by the training script (to report how a trained pair did) and by the tests (to
hold the shipped pair to the bar it was trained for).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

DICTIONARY_PATHS = ("/usr/share/dict/words", "/usr/share/dict/american-english")
_WORD = re.compile(r"[a-z]+")


def load_dictionary() -> set[str] | None:
    """Lowercase words of the system word list (Debian's `wamerican`), or None if absent."""
    for path in DICTIONARY_PATHS:
        p = Path(path)
        if p.exists():
            return {w.strip().lower() for w in p.read_text(errors="ignore").splitlines() if w.strip()}
    return None


def english_word_share(text: str, dictionary: set[str]) -> float:
    """Share of the lowercase words in `text` that are dictionary words (names are skipped)."""
    # Capitalised words are mostly names ("Lily"), which no word list holds; the bar is
    # about the rest of the text.
    words = [w for w in re.findall(r"[A-Za-z]+", text) if w[0].islower()]
    if not words:
        return 0.0
    known = sum(1 for w in words if w in dictionary or _stem_known(w, dictionary))
    return known / len(words)


def _stem_known(word: str, dictionary: set[str]) -> bool:
    # Some word lists lack inflections ("looked", "friends"); accept a known stem.
    for suffix in ("s", "es", "ed", "d", "ing", "ly"):
        if word.endswith(suffix) and word[: -len(suffix)] in dictionary:
            return True
    return False


@torch.no_grad()
def greedy_draft_acceptance(
    main, assistant, input_ids: torch.Tensor, new_tokens: int, draft_length: int = 4, eos_token_id=None
) -> tuple[int, int, list[int]]:
    """How often the assistant's greedy drafts of `draft_length` tokens match the main model's
    greedy path: one row of infercomp's own draft-and-verify decoding (`speculative.draft_verify`,
    greedy). Returns (drafted, accepted, generated ids); the generated ids are the main model's
    greedy continuation, up to and including an EOS."""
    from infercomp.speculative.draft_verify import ModelDrafter, Sampling, speculative_generate

    device = str(next(main.parameters()).device)
    eos = set() if eos_token_id is None else {eos_token_id}
    pad = 0 if eos_token_id is None else eos_token_id  # one row: nothing is padded
    out = speculative_generate(
        main, ModelDrafter(assistant), [input_ids[0].tolist()], new_tokens, Sampling(do_sample=False), draft_length,
        eos, pad, device=device,
    )  # fmt: skip
    return out.stats.drafted, out.stats.accepted, out.tokens[0]
