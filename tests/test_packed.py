"""infercomp's own int8 / int4 weight formats (fast/packed.py) on CPU: what the codes stand for,
the bytes they take, and the modules that stand in for the transformers linears. The Triton
kernels that read them are checked in tests/test_packed_kernel.py (interpreter) and on the GPU."""

from __future__ import annotations

import pytest
import torch

from infercomp.fast import packed


def test_int8_codes_are_within_half_a_step_of_each_weight():
    torch.manual_seed(0)
    w = torch.randn(24, 200)
    p = packed.pack(w, 8)
    assert p.codes.dtype == torch.int8 and p.codes.shape == (24, 200) and p.scale.shape == (24,)
    assert p.codes.abs().amax(-1).eq(127).all()  # each row's largest weight takes the full range
    err = (packed.dequantize(p) - w).abs()
    assert (err <= p.scale[:, None] / 2 + 1e-7).all()


def test_int4_groups_pack_two_columns_per_byte_and_stay_within_half_a_step():
    torch.manual_seed(1)
    w = torch.randn(10, 512)
    p = packed.pack(w, 4)
    assert p.group == 128 and p.codes.shape == (10, 256) and p.scale.shape == (10, 4) and p.low.shape == (10, 4)
    err = (packed.dequantize(p) - w).abs().view(10, 4, 128)
    assert (err <= p.scale[..., None] / 2 + 1e-6).all()
    # each group's minimum and maximum are represented (codes 0 and 15) up to that rounding
    grouped = w.view(10, 4, 128)
    assert torch.allclose(p.low, grouped.amin(-1))
    assert torch.allclose(p.low + 15 * p.scale, grouped.amax(-1), atol=1e-5)


def test_int4_nibble_order_is_column_j_low_and_j_plus_half_high():
    w = torch.zeros(1, 64)
    w[0, 3] = 1.0  # low nibble of byte 3
    w[0, 32 + 5] = 1.0  # high nibble of byte 5
    p = packed.pack(w, 4)  # groups of 32: [0, 32) and [32, 64)
    assert p.group == 32
    assert p.codes[0, 3].item() & 15 == 15 and p.codes[0, 5].item() >> 4 == 15
    assert torch.equal(packed.dequantize(p), w)


def test_group_size_follows_the_input_size_and_refuses_what_it_cannot_pack():
    assert [packed.int4_group(k) for k in (2560, 9728, 192, 96, 32)] == [128, 128, 32, 16, 16]
    assert packed.int4_group(48) is None
    with pytest.raises(ValueError, match="multiple of 32"):
        packed.pack(torch.zeros(2, 48), 4)


def test_rows_are_views_and_bytes_are_what_is_stored():
    p = packed.pack(torch.randn(12, 256, dtype=torch.bfloat16), 4)
    part = p.rows(4, 10)
    assert part.codes.data_ptr() == p.codes[4].data_ptr() and part.out_features == 6
    assert torch.equal(packed.dequantize(part), packed.dequantize(p)[4:10])
    # 4 bits a weight plus a scale and a minimum (bf16) per 128 weights
    assert p.nbytes() == 12 * 128 + 2 * (12 * 2 * 2)


@pytest.mark.parametrize("bits", [8, 4])
def test_packed_linear_stands_in_for_the_module(bits, monkeypatch):
    """Off the kernels, the module is the dequantized weight's product (the reference the kernels
    are tested against), and holds exactly the format's tensors as buffers."""
    monkeypatch.setenv("INFERCOMP_PACKED_KERNELS", "0")  # the reference path, even where kernels run
    torch.manual_seed(2)
    lin = torch.nn.Linear(128, 40, bias=False)
    x = torch.randn(3, 5, 128)
    module = packed.PackedLinear(packed.pack(lin.weight, bits))
    want = torch.nn.functional.linear(x, packed.dequantize(packed.pack(lin.weight, bits)))
    assert torch.equal(module(x), want)  # dequantized, then PyTorch's product
    names = {n for n, _ in module.named_buffers()}
    assert names == ({"codes", "scale"} if bits == 8 else {"codes", "scale", "low"})


def _qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        vocab_size=50, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(5)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for name in ("q_proj", "k_proj", "v_proj"):
            getattr(model.model.layers[0].self_attn, name).bias.normal_()  # biases that matter
    return model


@pytest.mark.parametrize("bits", [8, 4])
def test_q_k_v_biases_survive_packing_on_both_paths(bits):
    """Qwen2's q/k/v biases: kept by the reference engine's packing and by the fast engine's
    (views of the fused bias), and the parameter count stays the model's."""
    from infercomp.fast.model import LeanModel
    from infercomp.models import parameter_count
    from infercomp.quant_apply import quantize_lean

    reference, fast = _qwen2(), _qwen2()
    count = parameter_count(reference)
    want = {n: getattr(reference.model.layers[0].self_attn, n).bias.clone() for n in ("q_proj", "k_proj", "v_proj")}
    assert packed.pack_model(reference, bits) == []
    lean = LeanModel(fast)
    quantize_lean(lean, f"int{bits}-infercomp")
    for model in (reference, fast):
        attn = model.model.layers[0].self_attn
        for name, bias in want.items():
            module = getattr(attn, name)
            assert isinstance(module, packed.PackedLinear) and torch.equal(module.bias, bias)
        assert parameter_count(model) == count
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(reference(ids).logits, fast(ids).logits)  # the same packed model either way


def test_input_sizes_the_format_cannot_pack_stay_unquantized():
    lin = torch.nn.Linear(48, 8, bias=False)  # int4 needs a multiple of 32
    model = torch.nn.Module()
    model.model = torch.nn.Module()
    model.model.layers = torch.nn.ModuleList([torch.nn.Module()])
    model.model.layers[0].proj = lin
    assert packed.pack_model(model, 4) == ["model.layers.0.proj"] and model.model.layers[0].proj is lin
    assert packed.pack_model(model, 8) == [] and isinstance(model.model.layers[0].proj, packed.PackedLinear)


def test_pack_model_replaces_the_decoder_linears_only():
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = Qwen3Config(
        vocab_size=50, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, tie_word_embeddings=False,
    )  # fmt: skip
    model = Qwen3ForCausalLM(cfg)
    assert packed.pack_model(model, 4) == []
    assert sum(isinstance(m, packed.PackedLinear) for m in model.modules()) == 2 * 7
    assert isinstance(model.model.layers[0].mlp.down_proj, packed.PackedLinear)
    assert isinstance(model.lm_head, torch.nn.Linear)  # the token table is quant_table's business


@pytest.mark.slow
@pytest.mark.parametrize("bits", [8, 4])
def test_both_engines_run_the_embedded_model_in_infercomp_formats(bits, monkeypatch):
    """No torchao needed: both engines quantize the embedded model into the format, agree token for
    token in float32, hold real 1- or 4-bit codes, and record a small perplexity delta."""
    from infercomp.config import load_config
    from infercomp.loader import load_engine
    from infercomp.measure.memory import weight_bytes

    monkeypatch.setenv("INFERCOMP_QUANT_RECIPE", f"int{bits}-infercomp")
    monkeypatch.setenv("INFERCOMP_PACKED_KERNELS", "0")  # the dequantizing path, even under the interpreter

    def load(engine: str, kind: str):
        overrides = dict(engine=engine, quantization=kind, use_quantization=False, device="cpu", dtype="float32")
        return load_engine(load_config("quick", overrides, embedded=True), need_assistant=False)

    ref, fast = load("transformers", f"int{bits}"), load("fast", f"int{bits}")
    assert ref.settings.quantization_recipe == fast.settings.quantization_recipe == f"int{bits}-infercomp"
    a = [r.token_ids for r in ref.generate([0, 1], do_sample=False).rows]
    assert a == [r.token_ids for r in fast.generate([0, 1], do_sample=False).rows]
    float_bytes = weight_bytes(load("transformers", "none").main)
    assert weight_bytes(ref.main) == weight_bytes(fast.main) < (0.35 if bits == 8 else 0.2) * float_bytes
    quality = ref.settings.quantization_quality
    assert quality == fast.settings.quantization_quality and abs(quality["relative_delta"]) < 0.02
