"""Random-weight architectures and settings resolution."""

from __future__ import annotations

import torch

from infercomp.config import load_config
from infercomp.models import ARCHITECTURES, _architecture_config, resolve_settings


def test_builtin_architectures_have_the_published_sizes():
    from transformers import AutoModelForCausalLM

    cfg = load_config("example", overrides={"load_format": "random"})
    sizes = {}
    for name in ARCHITECTURES:
        with torch.device("meta"):  # shapes only: no memory, no download
            model = AutoModelForCausalLM.from_config(_architecture_config(name, cfg))
        sizes[name] = sum(p.numel() for p in model.parameters())
    assert 4.0e9 < sizes["Qwen/Qwen3-4B"] < 4.05e9  # 4.02 B with tied embeddings
    assert 0.59e9 < sizes["Qwen/Qwen3-0.6B"] < 0.61e9


def test_random_weights_force_fixed_length_and_say_so(tmp_path):
    from infercomp.runner import run_experiment

    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "load_format": "random",
            "max_new_tokens": 12,
            "num_completions": 1,
            "methods_to_test": ["standard", "batched"],
            "repeats": 1,
        },
    )
    results = run_experiment(cfg, tmp_path)
    assert results.settings["fixed_length"] is True
    assert any("random weights" in n for n in results.settings["notes"])
    for m in results.methods.values():
        assert m.status == "ok"
        assert [c.new_tokens for c in m.completions] == [12, 12]


def test_settings_fall_back_on_cpu_with_notes():
    cfg = load_config("example", embedded=True, overrides={"cache_implementation": "offloaded", "device": "cpu"})
    s = resolve_settings(cfg)
    assert s.cache_implementation == "dynamic" and s.attention == "sdpa" and s.dtype == "float32"
    assert any("offloaded" in n and "CUDA" in n for n in s.notes)
