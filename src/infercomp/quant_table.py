"""The token table (input embedding, and the LM head, which is the same table when tied) in int8.

With 4-bit decoder weights the table is the largest tensor left in the model dtype: Qwen3-4B's
tied 151,936 x 2,560 table is 0.78 GB in bfloat16, a quarter of the int4 model. Here it becomes
one int8 code per value and one scale per row (vocabulary entry), symmetric:

  table[v] ~= codes[v] * scale[v]     codes (vocab, hidden) int8, scale (vocab,) model dtype

Both uses read that one quantized copy (tied: one table object behind both modules, no extra copy):
  embedding  the rows of the ids, dequantized: (..., hidden) in the model dtype
  LM head    x @ codes.T times the row scales: (..., vocab); a per-row scale factors out of each
             output's dot product. On the fast engine on CUDA the product is compiled: for one
             row (batch-1 decoding) the compiler's coordinate-descent setting turns the product
             into one reduction that reads the one-byte codes, the cast fused into it. With more
             rows (batches, verify passes), and eagerly, a model-dtype copy of the codes is made
             per call and multiplied by cuBLAS: the table's memory is still halved, but such a
             step writes and reads that copy (2 x 0.78 GB for Qwen3-4B), more traffic than the
             bf16 table's one read (not measured yet; INFERCOMP_QUANT_TABLE=none avoids it).

Which weight kinds quantize their table: TABLE_KINDS (the 4-bit kinds, and int8, whose table then
has the precision of its other weights; fp8 keeps the table in the model dtype).
`INFERCOMP_QUANT_TABLE=none` keeps it unquantized for those too: a
benchmarking knob to measure what the int8 table costs or saves, recorded in the notes.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from torch import nn

TABLE_KINDS = ("int4", "int8")
TABLE_ENV = "INFERCOMP_QUANT_TABLE"


class QuantTable(nn.Module):
    """A (vocab, hidden) table as int8 codes and one scale per row. The codes are a frozen
    parameter (the model's parameter count stays that of the table they replace), the scales a
    buffer; both are counted by `measure.memory.weight_bytes` and moved by `.to()`."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        w = weight.detach()
        scale = (w.abs().amax(-1).float() / 127.0).clamp(min=torch.finfo(torch.float32).tiny)  # (vocab,)
        codes = (w.float() / scale[:, None]).round().clamp(-127, 127).to(torch.int8)  # (vocab, hidden)
        self.codes = nn.Parameter(codes, requires_grad=False)
        self.register_buffer("scale", scale.to(w.dtype))
        self.dtype = w.dtype

    @property
    def weight(self) -> torch.Tensor:
        """The codes: what `get_input_embeddings().weight` and tie checks by data pointer see."""
        return self.codes

    def nbytes(self) -> int:
        return self.codes.nbytes + self.scale.nbytes

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embedding lookup: ids (...) -> (..., hidden) in the model dtype."""
        return (self.codes[ids].float() * self.scale[ids].float()[..., None]).to(self.dtype)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """LM head: x (..., hidden) -> (..., vocab) in x's dtype."""
        return table_product(x, self.codes, self.scale)


def table_product(x: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x @ (codes * scale[:, None]).T as (x @ codes.T) * scale: (..., hidden) -> (..., vocab).
    A plain function of tensors, so the fast engine can compile it (the int8-to-float cast then
    fuses into the product instead of materializing a float copy of the table)."""
    return F.linear(x, codes.to(x.dtype)) * scale.to(x.dtype)


class _TableModule(nn.Module):
    """A transformers module's stand-in that reads a QuantTable (shared, not copied)."""

    def __init__(self, table: QuantTable):
        super().__init__()
        self.table = table

    @property
    def weight(self) -> torch.Tensor:
        return self.table.weight


class TableEmbedding(_TableModule):
    """Stands in for a transformers model's `embed_tokens`: ids (...) -> (..., hidden)."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table.rows(ids)


class TableHead(_TableModule):
    """Stands in for a transformers model's `lm_head`: (..., hidden) -> (..., vocab)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table.logits(x)


def wanted(kind: str) -> bool:
    """Whether runs of this weight kind quantize their token table."""
    return kind in TABLE_KINDS and os.environ.get(TABLE_ENV, "int8") != "none"


def describe(tied: bool) -> str:
    if tied:
        return "token table (tied embedding and LM head): one int8 copy read by both, one scale per vocabulary row"
    return "embedding and LM head tables: each in int8, one scale per vocabulary row"


@torch.no_grad()
def quantize_tables(model) -> tuple[QuantTable, QuantTable, bool]:
    """Replace a transformers causal LM's embedding and LM head by int8 tables, in place.
    Returns (embedding table, head table, tied); tied: one QuantTable serves both."""
    inner = model.model
    embed_w = inner.embed_tokens.weight
    head_w = model.lm_head.weight
    tied = head_w is embed_w or head_w.data_ptr() == embed_w.data_ptr()
    embed = QuantTable(embed_w)
    head = embed if tied else QuantTable(head_w)
    inner.embed_tokens = TableEmbedding(embed)
    model.lm_head = TableHead(head)
    return embed, head, tied


def is_table(obj) -> bool:
    return isinstance(obj, QuantTable)


def apply_tables(engine, leans=()) -> float:
    """Quantize the token tables where the run's weight kind asks for it (`wanted`): on the
    transformers models and, for the fast engine, its LeanModels (their `embed` / `head` then
    read the same QuantTable). Notes what was done; returns the seconds."""
    kind = engine.settings.quantization
    if not wanted(kind):
        why = f" ({TABLE_ENV}=none)" if kind in TABLE_KINDS else ""
        engine.settings.notes.append(f"token table (embedding, LM head) in the run's dtype{why}")
        return 0.0
    start = time.perf_counter()
    pairs = [(lean.hf, lean) for lean in leans] or [(m, None) for m in (engine.main, engine.assistant) if m]
    for model, lean in pairs:
        embed, head, tied = quantize_tables(model)
        if lean is not None:
            lean.embed, lean.head = embed, head
        note = describe(tied)
        if note not in engine.settings.notes:
            engine.settings.notes.append(note)
    if embed.codes.is_cuda:
        torch.cuda.synchronize(embed.codes.device)
    return time.perf_counter() - start
