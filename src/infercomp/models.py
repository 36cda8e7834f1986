"""Model names, where they live, and how they are loaded with the run's performance settings.

Names a config may use:
- `embedded:main`, `embedded:assistant`: the small pair shipped inside the package (offline).
- a local folder that `from_pretrained` can load.
- a Hugging Face hub id (loaded from the local cache, or downloaded when the network allows).
- with `load_format: "random"`, any of the above or a built-in architecture (`Qwen/Qwen3-4B`,
  `Qwen/Qwen3-0.6B`): the architecture with random weights, nothing downloaded.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EMBEDDED_DIR = Path(__file__).parent / "embedded"
EMBEDDED = {"embedded:main": EMBEDDED_DIR / "main", "embedded:assistant": EMBEDDED_DIR / "assistant"}

# Published architecture values of the seed's models, for random-weight runs without a download.
_QWEN3_COMMON = dict(
    head_dim=128,
    vocab_size=151936,
    tie_word_embeddings=True,
    rope_theta=1000000.0,
    max_position_embeddings=40960,
    rms_norm_eps=1e-6,
    model_type="qwen3",
)
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "Qwen/Qwen3-4B": dict(
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        **_QWEN3_COMMON,
    ),
    "Qwen/Qwen3-0.6B": dict(
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        **_QWEN3_COMMON,
    ),
}

QUANT_HINT = "pip install 'infercomp[quant]'"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message is one line naming the model and the cause."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str
    description: str


def known_models() -> list[ModelInfo]:
    out = [
        ModelInfo("embedded:main", "embedded", "small Qwen3 trained on simple stories (ships with infercomp)"),
        ModelInfo("embedded:assistant", "embedded", "smaller Qwen3 distilled from embedded:main (draft model)"),
    ]
    for name, arch in ARCHITECTURES.items():
        out.append(
            ModelInfo(
                name,
                "architecture",
                f"{arch['num_hidden_layers']} layers, hidden {arch['hidden_size']}: random weights "
                "with load_format=random; real weights from the hub or its cache",
            )
        )
    return out


def local_folder(name: str) -> Path:
    """The folder `from_pretrained` loads for `name`, without downloading anything."""
    if name in EMBEDDED:
        return EMBEDDED[name]
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        raise ModelLoadError(
            f"model {name!r} is neither embedded, a local folder, nor in the Hugging Face cache"
        ) from None


AUTO_COMPILE = (
    "yes: stock generate() with a static cache on CUDA compiles the main model's forward "
    "(torch.compile, once per shape, during warm-up); the speculative engine is not compiled"
)


@dataclass
class Settings:
    """The performance settings that actually ran, with a note for each one that could not."""

    device: str
    dtype: str
    attention: str
    quantization: str  # "none", "nf4 (bitsandbytes)"
    cache_implementation: str
    load_format: str
    fixed_length: bool
    num_assistant_tokens: int
    notes: list[str] = field(default_factory=list)
    # Whether transformers compiles the main model's forward by itself (torch.compile inside
    # generate(): a static cache on CUDA). The speculative engine's calls are never compiled.
    auto_compile: str = "no"

    def as_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_settings(config) -> Settings:
    """Decide once what the config's switches mean on this machine, noting every fallback."""
    import torch

    notes: list[str] = []
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {config.device!r} was asked for, but torch sees no CUDA device")
    on_gpu = device.startswith("cuda")

    dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if on_gpu else "float32")

    if config.use_flash_attention and on_gpu and _has("flash_attn"):
        attention = "flash_attention_2"
    else:
        attention = "sdpa"
        if config.use_flash_attention:
            why = "no CUDA device" if not on_gpu else "the flash-attn package is not installed"
            notes.append(f"use_flash_attention skipped: {why}; ran 'sdpa' (PyTorch's fused attention)")

    quantization = "none"
    if config.use_quantization:
        if config.load_format == "random":
            notes.append("use_quantization skipped: 4-bit loading needs stored weights, not load_format 'random'")
        elif not _has("bitsandbytes"):
            notes.append(f"use_quantization skipped: bitsandbytes is not installed ({QUANT_HINT})")
        else:
            quantization = "nf4 (bitsandbytes)"

    cache = config.cache_implementation
    if cache == "offloaded" and not on_gpu:
        notes.append("cache_implementation 'offloaded' skipped: it needs a CUDA device; ran 'dynamic'")
        cache = "dynamic"
    elif cache == "quantized" and not (_has("optimum.quanto") or _has("hqq")):
        notes.append(f"cache_implementation 'quantized' skipped: needs optimum-quanto ({QUANT_HINT}); ran 'dynamic'")
        cache = "dynamic"

    fixed_length = config.fixed_length
    if config.load_format == "random" and not fixed_length:
        fixed_length = True
        notes.append(
            "fixed_length forced on: random weights emit EOS at random, so every completion "
            "runs exactly max_new_tokens; quality figures are meaningless with random weights"
        )
    return Settings(
        device=device,
        dtype=dtype,
        attention=attention,
        quantization=quantization,
        cache_implementation=cache,
        load_format=config.load_format,
        fixed_length=fixed_length,
        num_assistant_tokens=config.num_assistant_tokens,
        notes=notes,
        auto_compile=AUTO_COMPILE if on_gpu and cache == "static" else "no",
    )


def load_tokenizer(name: str, load_format: str):
    from transformers import AutoTokenizer

    # Built-in architectures with random weights use the embedded tokenizer: its ids fit any vocab.
    source = (
        EMBEDDED["embedded:main"] if (load_format == "random" and name in ARCHITECTURES) else (EMBEDDED.get(name, name))
    )
    try:
        tok = AutoTokenizer.from_pretrained(str(source))
    except Exception as exc:
        raise ModelLoadError(f"tokenizer for {name!r} could not be loaded: {_first_line(exc)}") from None
    tok.padding_side = "left"  # rows of a batch must end at the same position for generation
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, settings: Settings, config, seed: int = 0):
    """Load one model on the run's device with its dtype, attention and quantization."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, settings.dtype)
    try:
        if settings.load_format == "random":
            model_config = _architecture_config(name, config)
            model_config._attn_implementation = settings.attention
            torch.manual_seed(seed)
            with torch.device(settings.device):
                model = AutoModelForCausalLM.from_config(model_config, dtype=dtype)
        else:
            kwargs: dict[str, Any] = dict(
                dtype=dtype,
                attn_implementation=settings.attention,
                trust_remote_code=config.trust_remote_code,
                use_safetensors=None if config.trust_remote_code else True,
            )
            if settings.quantization != "none":
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
                )
                kwargs["device_map"] = {"": settings.device}
            model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED.get(name, name)), **kwargs)
            if settings.quantization == "none":
                model.to(settings.device)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"model {name!r} could not be loaded: {_first_line(exc)}") from None
    model.eval()
    return model


def _architecture_config(name: str, config):
    from transformers import AutoConfig, Qwen3Config

    if name in ARCHITECTURES:
        values = {k: v for k, v in ARCHITECTURES[name].items() if k != "model_type"}
        return Qwen3Config(**values)
    return AutoConfig.from_pretrained(str(local_folder(name)), trust_remote_code=config.trust_remote_code)


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def timed_load(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
