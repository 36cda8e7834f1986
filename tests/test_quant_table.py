"""The int8 token table of the 4-bit weight kinds (quant_table): its numbers against the float
table, its bytes, one copy behind a tied embedding and head, and both engines reading it."""

from __future__ import annotations

import pytest
import torch

from infercomp.quant_table import QuantTable, TableEmbedding, TableHead, quantize_tables, wanted


def test_table_rows_and_product_match_the_float_table():
    torch.manual_seed(0)
    w = torch.randn(300, 64)
    t = QuantTable(w)
    assert t.codes.dtype == torch.int8 and t.codes.shape == (300, 64) and t.scale.shape == (300,)
    ids = torch.tensor([[0, 5, 299], [7, 7, 1]])
    rows = t.rows(ids)
    assert rows.shape == (2, 3, 64) and rows.dtype == torch.float32
    # Symmetric int8 per row: every value within half a step (max|row| / 127 / 2) of the original.
    step = w.abs().amax(-1) / 127
    assert ((rows - w[ids]).abs() <= step[ids][..., None] / 2 + 1e-6).all()
    x = torch.randn(2, 1, 64)
    exact, quant = x @ w.T, t.logits(x)
    assert quant.shape == (2, 1, 300)
    assert (quant - exact).abs().max() < 0.02 * exact.abs().max()
    assert (quant.argmax(-1) == exact.argmax(-1)).float().mean() >= 0.5


def test_table_bytes_for_qwen3_4b_shapes():
    """bf16 151,936 x 2,560 (Qwen3-4B's tied table): 0.778 GB; int8 codes + bf16 row scales: half."""
    w = torch.empty(151936, 2560, dtype=torch.bfloat16, device="meta")
    t = QuantTable(w)
    assert t.nbytes() == 151936 * 2560 + 151936 * 2
    assert t.nbytes() / (w.numel() * 2) < 0.501


def test_tied_model_gets_one_table_and_counts_it_once():
    from tests.test_speculative_sampling import tiny_qwen3

    from infercomp.measure.memory import weight_bytes
    from infercomp.models import parameter_count

    model = tiny_qwen3(0)  # float32, a 6 x 16 table; tied here
    model.lm_head.weight = model.model.embed_tokens.weight
    before, count = weight_bytes(model), parameter_count(model)
    ids = torch.randint(0, 6, (1, 12))
    with torch.no_grad():
        ref = model(ids).logits
    embed, head, tied = quantize_tables(model)
    assert tied and embed is head
    assert isinstance(model.model.embed_tokens, TableEmbedding) and isinstance(model.lm_head, TableHead)
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    # float32 table (6 x 16 x 4 bytes) replaced by int8 codes + float32 row scales, counted once
    assert weight_bytes(model) == before - 6 * 16 * 4 + 6 * 16 + 6 * 4
    assert parameter_count(model) == count  # the codes stand for the table's values
    assert model.dtype == torch.float32  # the first floating-point parameter, not the codes
    with torch.no_grad():
        out = model(ids).logits
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_the_integer_kinds_quantize_the_table(monkeypatch):
    assert wanted("int4") and wanted("int8") and not wanted("fp8") and not wanted("none")
    monkeypatch.setenv("INFERCOMP_QUANT_TABLE", "none")
    assert not wanted("int4") and not wanted("int8")


pytest.importorskip("torchao", reason="torchao is not installed (pip install 'infercomp[quant]')")


def _load(engine: str, kind: str):
    from infercomp.config import load_config
    from infercomp.loader import load_engine

    overrides = dict(
        engine=engine, quantization=kind, use_quantization=False, device="cpu", dtype="float32", max_new_tokens=16
    )
    return load_engine(load_config("quick", overrides, embedded=True), need_assistant=False)


@pytest.mark.slow
def test_int4_on_the_embedded_pair_reads_one_int8_table(monkeypatch):
    """int4 on CPU (int4 values one per byte): both engines read the int8 table, the fast engine's
    LeanModel points at the same QuantTable as the transformers modules, the bytes drop by half
    the float table, and greedy tokens of the two engines agree; the perplexity delta against
    float32 stays small."""
    from infercomp.measure.memory import weight_bytes

    monkeypatch.setenv("INFERCOMP_QUANT_TABLE", "none")
    plain = _load("transformers", "int4")
    monkeypatch.delenv("INFERCOMP_QUANT_TABLE")
    ref, fast = _load("transformers", "int4"), _load("fast", "int4")
    assert fast.settings.engine == "fast"
    table = fast.main.model.embed_tokens.table
    assert fast.lean.embed is table and fast.lean.head is fast.main.lm_head.table
    assert any("int8" in n and "one scale per vocabulary row" in n for n in fast.settings.notes)
    assert any(n.startswith("quantized tensors: every decoder layer's q, k, v") for n in fast.settings.notes)
    assert "token table (embedding, LM head) in the run's dtype (INFERCOMP_QUANT_TABLE=none)" in plain.settings.notes
    emb = plain.main.model.embed_tokens.weight
    float_table = emb.numel() * emb.element_size()
    tied = plain.main.lm_head.weight.data_ptr() == emb.data_ptr()
    saved = (1 if tied else 2) * (float_table - table.nbytes())
    assert weight_bytes(ref.main) == weight_bytes(plain.main) - saved
    assert fast.lean.weight_bytes() <= weight_bytes(fast.main)
    a = [r.token_ids for r in ref.generate([0, 1], do_sample=False).rows]
    b = [r.token_ids for r in fast.generate([0, 1], do_sample=False).rows]
    assert a == b
    q = ref.settings.quantization_quality
    print(f"int4 + int8 table: {q}; without the table: {plain.settings.quantization_quality}")
    assert abs(q["relative_delta"]) < 0.05
