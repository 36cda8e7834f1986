"""Is a tensor-parallel size possible here? Checked before any process starts or weight loads.

A size must not exceed the visible GPUs (on CUDA) and must divide the main model's attention
heads and KV heads (each rank computes whole heads). Only the model's config is read.
"""

from __future__ import annotations

import os

from infercomp.config import Config, ConfigError


def check_tensor_parallel(config: Config) -> None:
    """Raise ConfigError (one line) when `config.tensor_parallel_size` cannot run here."""
    size = config.tensor_parallel_size
    if size == 1:
        return
    _check_devices(config, size)
    _check_heads(config, size)
    _check_packages()


def _error(text: str) -> ConfigError:
    return ConfigError(f"config error: field 'tensor_parallel_size': {text}")


def _check_devices(config: Config, size: int) -> None:
    import torch

    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise _error(f"{size} ranks on device 'cuda', but torch sees no CUDA device")
    if config.device == "cpu" and cuda:
        raise _error(
            "CPU ranks need a machine without visible GPUs (transformers places shards on the accelerator); "
            "use device 'auto', or CUDA_VISIBLE_DEVICES='' for CPU ranks"
        )
    if cuda and config.device in ("auto", "cuda"):
        count = torch.cuda.device_count()
        if size > count:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
            raise _error(f"{size} needs {size} GPUs, one per rank; torch sees {count}{where}; allowed: 1 to {count}")


def _check_heads(config: Config, size: int) -> None:
    model_config = main_model_config(config)
    if model_config is None:
        return  # not readable without a download: loading will say why
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    heads = text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    for label, count in (("attention heads", heads), ("KV heads", kv_heads)):
        if count % size:
            allowed = ", ".join(str(d) for d in range(1, count + 1) if heads % d == 0 and kv_heads % d == 0)
            raise _error(
                f"{size} does not divide the main model's {count} {label} ({config.main_model}); allowed: {allowed}"
            )


def main_model_config(config: Config):
    """The main model's transformers config (no weights), or None where only a download has it."""
    from infercomp.architectures import ARCHITECTURES, architecture_config
    from infercomp.models import ModelLoadError, local_folder

    if config.main_model in ARCHITECTURES:
        return architecture_config(config.main_model)
    try:
        folder = local_folder(config.main_model)
    except ModelLoadError:
        return None
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(folder), trust_remote_code=config.trust_remote_code)


def _check_packages() -> None:
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise ConfigError("tensor parallel needs the accelerate package: pip install accelerate")
