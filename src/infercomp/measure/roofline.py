"""Roofline per forward pass: the bytes one pass must read, over its measured time, against the
measured copy bandwidth.

What a pass reads:
  - weights: every parameter once, except the input embedding, of which it reads one row per
    token it feeds (rows x tokens x hidden); with tied embeddings the table is read whole
    anyway by the LM head, so it is counted once, whole.
  - KV cache: keys and values of every earlier position of every row, the prompt's included.
    Dynamic caches hold the actual context; a static cache's attention runs over its whole
    preallocated length, so that length is what a pass reads, unless the engine reports that its
    steps read each row's valid slots only (the fast engine's attention kernel: the context).

Stock decoding: one pass per generated position; the step at position t (t = 1..N-1 after the
prefill's first token) reads the context P + t. Draft-and-verify: one main-model pass per
verify round, scoring k + 1 tokens per row at a context of about P + N / 2 (its mean over the
call); the drafter's passes are not part of that figure.

Where a pass reads less than MEANINGFUL_BYTES, the figure is not meaningful: that much fits in a
GPU's L2 (50 MB on an H100) or a CPU's last-level cache, and such a step's time is set by kernel
launches and Python, not by memory traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

MEANINGFUL_BYTES = 64 * 1024 * 1024
NOT_MEANINGFUL = (
    "not meaningful: a pass reads {mb:.1f} MB, under {limit} MB, which fits in on-chip caches; "
    "the step is launch- and overhead-bound, not bandwidth-bound"
)


@dataclass
class CallShape:
    """What one generate call ran: rows, padded prompt, generated positions, its cache length."""

    rows: int
    prompt: int  # padded prompt tokens
    new: int  # generated positions (the longest row's)
    passes: int  # decode steps after the first token (stock), or verify passes (speculative)
    step_time_s: float | None  # seconds per decode step (stock) or per verify pass (speculative)
    static_slots: int | None = None  # preallocated cache length, when the cache is static
    tokens_per_pass: float = 1.0  # tokens each row feeds per pass (k + 1 in a verify pass)


def weight_bytes_per_pass(model, tokens: int) -> int:
    """Bytes of weights a pass reads when it feeds `tokens` tokens in all (rows x tokens)."""
    from infercomp.measure.memory import weight_bytes

    total = weight_bytes(model)
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is not None and head.weight.data_ptr() == embed.data_ptr()
    if tied:
        return total
    table = embed.numel() * embed.element_size()
    row = embed.shape[1] * embed.element_size()
    return total - table + min(table, tokens * row)


def call_bytes(model, kv_per_token: int, call: CallShape, speculative: bool) -> tuple[float, float]:
    """(mean weight bytes, mean KV bytes) one pass of this call reads."""
    tokens = round(call.rows * call.tokens_per_pass)
    weights = weight_bytes_per_pass(model, tokens)
    if call.static_slots is not None:
        context = float(call.static_slots)
    elif speculative:
        context = call.prompt + call.new / 2
    else:
        context = call.prompt + call.new / 2  # decode steps t = 1..N-1 read P + t: mean P + N/2
    return float(weights), kv_per_token * call.rows * context


def roofline(
    model, calls: list[CallShape], bandwidth_gbs: float | None, speculative: bool, kv_kind: str | None = None
) -> dict:
    """Roofline fields over a method's calls: bytes and time summed over every pass. kv_kind: the
    fast engine's cache kind, whose element bytes the KV reads count (memory.kv_bytes_per_token)."""
    from infercomp.measure.memory import kv_bytes_per_token

    timed = [c for c in calls if c.step_time_s and c.passes > 0]
    if not timed or not bandwidth_gbs:
        return {"unavailable": "no decode steps were timed" if not timed else "no bandwidth measured"}
    kv_per_token = kv_bytes_per_token(model, kv_kind)
    weights = kv = seconds = 0.0
    passes = 0
    for c in timed:
        n = c.passes
        w, k = call_bytes(model, kv_per_token, c, speculative)
        weights, kv, seconds, passes = weights + w * n, kv + k * n, seconds + c.step_time_s * n, passes + n
    per_pass = (weights + kv) / passes
    achieved = (weights + kv) / seconds / 1e9
    note = None
    if per_pass < MEANINGFUL_BYTES:
        note = NOT_MEANINGFUL.format(mb=per_pass / 1e6, limit=MEANINGFUL_BYTES // (1024 * 1024))
    return {
        "pass_kind": "verify pass (main model)" if speculative else "decode step",
        "weights_per_step_gb": weights / passes / 1e9,
        "kv_per_step_gb": kv / passes / 1e9,
        "bytes_per_step_gb": per_pass / 1e9,
        "step_time_s": seconds / passes,
        "achieved_gbs": achieved,
        "bandwidth_gbs": bandwidth_gbs,
        "share": achieved / bandwidth_gbs,
        "meaningful": note is None,
        "note": note,
    }
