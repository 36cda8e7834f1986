"""Quality next to speed: what each method does to the text.

All of it runs after the timed calls, never inside them:
- perplexity of each completion's new tokens under the main model (teacher-forced, batched);
- diversity across a prompt's completions (distinct-1/2, self-BLEU with sacrebleu) and
  repetition inside a completion (share of repeated word 3-grams);
- required words: the share of completions containing every word a prompt asks for;
- agreement with greedy decoding: exact matches and where the first differing token falls.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+|[^\w\s]")
_REQUEST = re.compile(
    r"\b(?:with|containing|contains|contain|using|uses|include|includes|including)\s+(?:the\s+)?words?\s+(.+)$",
    re.IGNORECASE,
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Unique n-grams over all n-grams, pooled across the texts (a prompt's completions)."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else None


def repetition(text: str, n: int = 3) -> float | None:
    """Share of a text's word n-grams that repeat an earlier one: 0 = none, near 1 = a loop."""
    grams = ngrams(words(text), n)
    return 1 - len(set(grams)) / len(grams) if grams else None


def self_bleu(texts: Sequence[str]) -> float | None:
    """Mean sentence BLEU (0-100) of each text against the others: high = the texts are alike."""
    from sacrebleu.metrics import BLEU

    if len(texts) < 2:
        return None
    bleu = BLEU(effective_order=True)
    scores = [bleu.sentence_score(t, [o for j, o in enumerate(texts) if j != i]).score for i, t in enumerate(texts)]
    return sum(scores) / len(scores)


def parse_required_words(prompt: str) -> list[str]:
    """Words a prompt asks for, from phrasings like "containing word elephant and cake" or
    "with the words a, b and c". Returns [] when the prompt asks for none."""
    match = _REQUEST.search(prompt.strip().rstrip(".!?"))
    if not match:
        return []
    parts = re.split(r",|\band\b|\bor\b", match.group(1))
    return [p.strip().strip("\"'").lower() for p in parts if p.strip().strip("\"'")]


def contains_word(text: str, word: str) -> bool:
    """Whole-word, case-insensitive; a plural ("cakes") counts for the word ("cake")."""
    return re.search(rf"\b{re.escape(word)}(?:s|es)?\b", text, re.IGNORECASE) is not None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def pareto_front(points: dict[str, tuple[float, float]]) -> set[str]:
    """Names not dominated in (higher speed, lower perplexity)."""
    front = set()
    for name, (speed, ppl) in points.items():
        dominated = any(
            (s >= speed and p <= ppl) and (s > speed or p < ppl) for other, (s, p) in points.items() if other != name
        )
        if not dominated:
            front.add(name)
    return front


@dataclass
class Scored:
    prompt_index: int
    token_ids: list[int]
    text: str


def perplexities(model, prompt_ids: list[list[int]], items: list[Scored], pad_id: int, batch: int = 16) -> list:
    """Per item: exp(mean negative log-likelihood) of its new tokens given its prompt.

    One forward pass per batch of items, right-padded; only the new tokens are scored, so the
    prompt and padding never count.
    """
    import torch

    device = next(model.parameters()).device
    out: list[float | None] = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        seqs = [prompt_ids[it.prompt_index] + it.token_ids for it in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)  # (rows, width-1, vocab): predicts token t+1
        for r, it in enumerate(chunk):
            p, n = len(prompt_ids[it.prompt_index]), len(it.token_ids)
            if n == 0:
                out.append(None)
                continue
            targets = torch.tensor(it.token_ids, device=logprobs.device)
            lp = logprobs[r, p - 1 : p - 1 + n].gather(1, targets[:, None]).squeeze(1)
            out.append(math.exp(-lp.mean().item()))
    return out


def required_words_for(config) -> list[list[str]]:
    """Per prompt: the config's required_words entry, else what the prompt's phrasing asks for."""
    given = config.required_words or [None] * len(config.prompts)
    return [w if w is not None else parse_required_words(p) for p, w in zip(config.prompts, given, strict=True)]


def score_method(config, model, tokenizer, completions, reference: dict[int, list[int]]) -> dict:
    """Every quality figure of one method's completions (fills each completion's perplexity).
    `model` scores perplexity; `reference` is each prompt's greedy token ids."""
    by_prompt: dict[int, list] = {}
    for c in completions:
        by_prompt.setdefault(c.prompt_index, []).append(c)

    prompt_ids = [tokenizer(p)["input_ids"] for p in config.prompts]
    scored = [Scored(c.prompt_index, c.token_ids, c.text) for c in completions]
    for c, ppl in zip(completions, perplexities(model, prompt_ids, scored, tokenizer.pad_token_id), strict=True):
        c.perplexity = ppl

    def mean_of(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    required = required_words_for(config)
    asked = [c for c in completions if required[c.prompt_index]]
    per_word: dict[str, list[bool]] = {}
    for c in asked:
        for w in required[c.prompt_index]:
            per_word.setdefault(w, []).append(contains_word(c.text, w))

    prefix = [common_prefix(c.token_ids, reference[c.prompt_index]) for c in completions]
    exact = [c.token_ids == reference[c.prompt_index] for c in completions]
    return {
        "mean_perplexity": mean_of(c.perplexity for c in completions),
        "distinct_1": mean_of(distinct_n([c.text for c in g], 1) for g in by_prompt.values()),
        "distinct_2": mean_of(distinct_n([c.text for c in g], 2) for g in by_prompt.values()),
        "self_bleu": mean_of(self_bleu([c.text for c in g]) for g in by_prompt.values()),
        "repetition": mean_of(repetition(c.text) for c in completions),
        "required_word_rate": (
            sum(all(contains_word(c.text, w) for w in required[c.prompt_index]) for c in asked) / len(asked)
            if asked
            else None
        ),
        "required_word_rates": {w: sum(hits) / len(hits) for w, hits in per_word.items()},
        "exact_match_vs_greedy": sum(exact) / len(exact) if exact else None,
        "mean_first_divergence": mean_of(prefix),
    }


# ---------------------------------------------------------------------------------------------
# What weight quantization did to the model, measured once at load.

PROBE_PROMPTS = 4  # the run's first prompts
PROBE_TOKENS = 48  # greedy new tokens per prompt


class QualityProbe:
    """What quantization did to the main model, measured at load (outside every timed call):
    the unquantized model's greedy continuations of the run's first prompts are the fixed texts;
    after quantization, their perplexity is scored again and the quantized model's own greedy
    continuations are compared with them token by token."""

    def __init__(self, engine):
        self.engine = engine
        tok = engine.tokenizer
        self.prompt_ids = [tok(p)["input_ids"] for p in engine.config.prompts[:PROBE_PROMPTS]]
        self.texts = self._greedy()
        self.before = self._perplexity()

    def _greedy(self) -> list[list[int]]:
        import torch

        tok, model = self.engine.tokenizer, self.engine.main
        enc = tok.pad({"input_ids": self.prompt_ids}, return_tensors="pt").to(model.device)  # left-padded
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=PROBE_TOKENS,
                min_new_tokens=PROBE_TOKENS,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        return out[:, enc["input_ids"].shape[1] :].tolist()

    def _perplexity(self) -> float:
        items = [Scored(i, ids, "") for i, ids in enumerate(self.texts)]
        values = perplexities(self.engine.main, self.prompt_ids, items, self.engine.tokenizer.pad_token_id)
        return sum(values) / len(values)

    def compare(self) -> dict:
        after = self._perplexity()
        quantized = self._greedy()
        prefixes = [common_prefix(a, b) for a, b in zip(self.texts, quantized, strict=True)]
        return {
            "texts": f"greedy continuations ({PROBE_TOKENS} tokens) of the first {len(self.texts)} prompts "
            "by the unquantized model",
            "perplexity_unquantized": round(self.before, 4),
            "perplexity_quantized": round(after, 4),
            "delta": round(after - self.before, 4),
            "relative_delta": round(after / self.before - 1, 5),
            "greedy_exact_matches": sum(p == PROBE_TOKENS for p in prefixes) / len(prefixes),
            "greedy_agreed_tokens": sum(prefixes) / (PROBE_TOKENS * len(prefixes)),  # before the first difference
        }
