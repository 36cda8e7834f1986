"""Published architectures, for random-weight runs without a download.

Each entry holds the values of the model's published `config.json` that shape its compute and
memory (widths, layers, heads, vocabulary, RoPE), plus `model_type`, which picks the transformers
config class. With `load_format: "random"` these build the model with random weights on the meta
device and materialise them on the run's device (each rank's shard under tensor parallel).
"""

from __future__ import annotations

from typing import Any

_QWEN3 = dict(
    model_type="qwen3",
    head_dim=128,
    vocab_size=151936,
    rope_theta=1000000.0,
    max_position_embeddings=40960,
    rms_norm_eps=1e-6,
)
# Llama 3.1 stretches RoPE to 128k positions with the "llama3" frequency scaling.
_LLAMA31 = dict(
    model_type="llama",
    head_dim=128,
    vocab_size=128256,
    rope_theta=500000.0,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    bos_token_id=128000,
    eos_token_id=128001,
)


def _qwen3(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, tied: bool) -> dict[str, Any]:
    return dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        tie_word_embeddings=tied,
        **_QWEN3,
    )


def _llama31(hidden: int, intermediate: int, layers: int, heads: int) -> dict[str, Any]:
    return dict(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=8,
        **_LLAMA31,
    )


ARCHITECTURES: dict[str, dict[str, Any]] = {
    "Qwen/Qwen3-4B": _qwen3(2560, 9728, 36, 32, 8, tied=True),
    "Qwen/Qwen3-0.6B": _qwen3(1024, 3072, 28, 16, 8, tied=True),
    "Qwen/Qwen3-8B": _qwen3(4096, 12288, 36, 32, 8, tied=False),
    "Qwen/Qwen3-14B": _qwen3(5120, 17408, 40, 40, 8, tied=False),
    "Qwen/Qwen3-32B": _qwen3(5120, 25600, 64, 64, 8, tied=False),
    "meta-llama/Llama-3.1-8B": _llama31(4096, 14336, 32, 32),
    "meta-llama/Llama-3.1-70B": _llama31(8192, 28672, 80, 64),
}


def architecture_config(name: str, overrides: dict[str, Any] | None = None):
    """The transformers config of a built-in architecture (`overrides` shrink it, e.g. in tests)."""
    from transformers import LlamaConfig, Qwen3Config

    values = {**ARCHITECTURES[name], **(overrides or {})}
    kind = values.pop("model_type")
    return {"qwen3": Qwen3Config, "llama": LlamaConfig}[kind](**values)
