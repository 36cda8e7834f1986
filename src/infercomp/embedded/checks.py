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
    """Walk the main model's greedy path with greedy drafts of `draft_length` tokens.

    This is greedy speculative decoding done plainly (no cache, one sequence): each round the
    assistant drafts k tokens, the main model scores prefix + draft in one pass, the longest
    agreeing prefix is kept plus the main model's own next token. Returns (drafted, accepted,
    generated ids); the generated ids are the main model's greedy continuation.
    """
    seq = input_ids[0].tolist()
    start = len(seq)
    drafted = accepted = 0
    device = next(main.parameters()).device
    while len(seq) - start < new_tokens:
        draft = _greedy_tokens(assistant, seq, draft_length, device)
        logits = main(torch.tensor([seq + draft], device=device)).logits[0]  # (len, vocab)
        # Main's greedy choice after each of the k+1 prefixes ending at the draft tokens.
        preds = logits[len(seq) - 1 :].argmax(-1).tolist()
        n = 0
        while n < draft_length and draft[n] == preds[n]:
            n += 1
        drafted += draft_length
        accepted += n
        seq = seq + draft[:n] + [preds[n]]
        if eos_token_id is not None and eos_token_id in seq[start:]:
            seq = seq[: seq.index(eos_token_id, start) + 1]
            break
    return drafted, accepted, seq[start : start + new_tokens]


def _greedy_tokens(model, seq: list[int], k: int, device) -> list[int]:
    # Recomputes the whole prefix each step: the models are tiny and this avoids the cache
    # keyword, which differs between transformers releases.
    seq = list(seq)
    out = []
    for _ in range(k):
        nxt = int(model(torch.tensor([seq], device=device)).logits[0, -1].argmax())
        out.append(nxt)
        seq.append(nxt)
    return out
