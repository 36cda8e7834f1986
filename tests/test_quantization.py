"""Weight quantization: resolving kinds and recipes, real storage bytes, and both engines running
the quantized embedded model on CPU with its perplexity delta against float32."""

from __future__ import annotations

import pytest
import torch

from infercomp import quant_apply, quantize
from infercomp.config import ConfigError, load_config
from infercomp.measure.memory import tensor_bytes
from infercomp.quantize import QuantizationError, resolve
from infercomp.texts import long_prompt, story

torchao = pytest.importorskip("torchao", reason="torchao is not installed (pip install 'infercomp[quant]')")


def test_config_accepts_kinds_and_rejects_others():
    assert load_config(overrides={"quantization": "int8"}).quantization == "int8"
    with pytest.raises(ConfigError, match="quantization"):
        load_config(overrides={"quantization": "int3"})


def test_explicit_kind_that_cannot_run_is_an_error(monkeypatch):
    real = quantize._has
    monkeypatch.setattr(quantize, "_has", lambda m: False if m in ("torchao", "bitsandbytes") else real(m))
    with pytest.raises(QuantizationError, match="int8.*needs torchao"):
        resolve("int8", False, "cpu", "float32", "weights", 1)
    with pytest.raises(QuantizationError, match="nf4.*needs bitsandbytes"):
        resolve("nf4", False, "cpu", "float32", "weights", 1)
    # The legacy switch stays a stated skip.
    kind, recipe, notes = resolve("none", True, "cpu", "float32", "weights", 1)
    assert (kind, recipe) == ("none", None) and "use_quantization skipped" in notes[0]


def test_legacy_switch_picks_int4_on_a_gpu_and_says_so():
    kind, recipe, notes = resolve("none", True, "cuda", "bfloat16", "random", 1)
    assert (kind, recipe) == ("int4", "int4-tile-packed")
    assert any("use_quantization: ran quantization 'int4'" in n for n in notes)
    # On CPU no 4-bit storage exists (int4 values one per byte): a stated skip.
    kind, recipe, notes = resolve("none", True, "cpu", "float32", "random", 1)
    assert (kind, recipe) == ("none", None) and "packed int4 kernels need CUDA" in notes[0]
    kind, _, notes = resolve("int8", True, "cpu", "float32", "weights", 1)
    assert kind == "int8" and any("use_quantization ignored" in n for n in notes)


def test_nf4_random_and_tensor_parallel_are_errors():
    with pytest.raises(QuantizationError, match="load_format 'random'"):
        resolve("nf4", False, "cpu", "float32", "random", 1)
    with pytest.raises(QuantizationError, match="tensor_parallel_size 2"):
        resolve("int8", False, "cpu", "float32", "weights", 2)


def test_recipe_knob(monkeypatch):
    monkeypatch.setenv(quantize.RECIPE_ENV, "fp8-weight-only")
    with pytest.raises(QuantizationError, match="not a recipe of kind 'int8'"):
        resolve("int8", False, "cpu", "float32", "weights", 1)
    monkeypatch.setenv(quantize.RECIPE_ENV, "int4-tile-packed")
    with pytest.raises(QuantizationError, match="needs a CUDA device"):
        resolve("int4", False, "cpu", "float32", "weights", 1)
    monkeypatch.setenv(quantize.RECIPE_ENV, "int8-dynamic")
    assert resolve("int8", False, "cpu", "float32", "weights", 1)[1] == "int8-dynamic"


def test_tensor_bytes_counts_quantized_storage():
    weight = torch.randn(512, 256)
    q = quant_apply.quantize_weight(weight, "int8-weight-only")
    assert q.numel() * q.element_size() == 512 * 256 * 4  # what the subclass claims: the float size
    # int8 values + per-row scales and int8 zero points
    assert 512 * 256 + 512 * 4 <= tensor_bytes(q) <= 512 * 256 + 512 * 8
    assert tensor_bytes(weight) == 512 * 256 * 4
    x = torch.randn(3, 256)
    exact = x @ weight.T
    assert (torch.nn.functional.linear(x, q) - exact).norm() < 0.02 * exact.norm()  # int8 rounding only


def test_texts_are_deterministic():
    assert story(3, 50) == story(3, 50) != story(4, 50)
    assert len(story(3, 50).split()) >= 50
    assert long_prompt(1, 100).endswith("what happened next.")


def _load(engine: str, kind: str):
    from infercomp.loader import load_engine

    cfg = load_config(
        "quick",
        embedded=True,
        overrides=dict(
            engine=engine,
            quantization=kind,
            use_quantization=False,
            device="cpu",
            dtype="float32",
            max_new_tokens=24,
            num_completions=1,
        ),
    )
    return load_engine(cfg, need_assistant=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, recipe",
    [("int8", None), ("int4", None), ("fp8", None), ("int8", "int8-infercomp"), ("int4", "int4-infercomp")],
)
def test_both_engines_run_the_quantized_model(kind, recipe, monkeypatch):
    """Each kind that runs on CPU (default recipe, and infercomp's own formats): the fast engine's
    greedy tokens equal the reference engine's under the same quantization; weights shrink; the
    perplexity delta against float32 is recorded and small."""
    from infercomp.measure.memory import weight_bytes

    if recipe:
        monkeypatch.setenv(quantize.RECIPE_ENV, recipe)
        monkeypatch.setenv("INFERCOMP_PACKED_KERNELS", "0")  # the dequantizing path, even under the interpreter
    ref, fast = _load("transformers", kind), _load("fast", kind)
    assert (ref.settings.engine, fast.settings.engine) == ("transformers", "fast")
    for engine in (ref, fast):
        assert engine.settings.quantization == kind
        assert engine.settings.quantization_seconds is not None
    assert weight_bytes(fast.main) == weight_bytes(ref.main)
    float_bytes = weight_bytes(_load("transformers", "none").main)
    # The decoder projections shrink to about a quarter (and the token table too for int4 / int8).
    assert weight_bytes(ref.main) < 0.45 * float_bytes
    a = [r.token_ids for r in ref.generate([0, 1], do_sample=False).rows]
    b = [r.token_ids for r in fast.generate([0, 1], do_sample=False).rows]
    assert a == b
    quality = ref.settings.quantization_quality
    assert quality == fast.settings.quantization_quality
    print(f"{kind}: perplexity delta against float32 {quality}")
    bound = 0.05 if kind == "int4" else 0.01
    assert abs(quality["relative_delta"]) < bound
    assert 0 <= quality["greedy_agreed_tokens"] <= 1


@pytest.mark.slow
def test_nf4_on_the_fast_engine_falls_back_or_errors():
    """nf4 (bitsandbytes) runs on the reference engine only: the fast engine says so."""
    from infercomp.models import ModelLoadError

    try:
        engine = _load("fast", "nf4")
    except ModelLoadError as exc:  # bitsandbytes missing here: one clear line
        assert "nf4" in str(exc) and "bitsandbytes" in str(exc)
        return
    assert engine.settings.engine == "transformers"
    assert any("nf4" in n and "reference engine only" in n for n in engine.settings.notes)


def test_long_context_preset_is_the_generated_story():
    cfg = load_config("long_context")
    assert cfg.prompts == [long_prompt(seed, 3000) for seed in (11, 12, 13, 14)]
    assert cfg.load_format == "random" and cfg.batch_size == 16
