"""Model names, where they live, and how they are loaded with the run's performance settings.

Names a config may use:
- `embedded:main`, `embedded:assistant`: the small pair shipped inside the package (offline).
- a local folder that `from_pretrained` can load.
- a Hugging Face hub id (loaded from the local cache, or downloaded when the network allows).
- with `load_format: "random"`, any of the above or a built-in architecture (`architectures.py`:
  Qwen3 0.6B to 32B, Llama 3.1 8B and 70B): the architecture with random weights, nothing downloaded.
  Random weights are built on the meta device and materialised directly on the run's device.

Under tensor parallel (`tensor_parallel_size` > 1, inside a torch.distributed worker) the main
model is sharded with transformers' tensor-parallel plan ("auto": the model's own plan) and the
assistant is replicated on every rank.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infercomp.architectures import ARCHITECTURES, architecture_config
from infercomp.errors import one_line

EMBEDDED_DIR = Path(__file__).parent / "embedded"
EMBEDDED = {"embedded:main": EMBEDDED_DIR / "main", "embedded:assistant": EMBEDDED_DIR / "assistant"}

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
    quantization: str  # the kind that ran: "none", "int8", "int4", "fp8" (torchao) or "nf4" (bitsandbytes)
    cache_implementation: str
    load_format: str
    fixed_length: bool
    num_assistant_tokens: int
    engine: str = "transformers"  # the engine that ran: "transformers" (reference) or "fast"
    compile: dict[str, Any] | None = None  # fast engine: compile mode, seconds, captured steps
    notes: list[str] = field(default_factory=list)
    tensor_parallel_size: int = 1  # ranks the main model is sharded over
    # Whether transformers compiles the main model's forward by itself (torch.compile inside
    # generate(): a static cache on CUDA). The speculative engine's calls are never compiled.
    auto_compile: str = "no"
    quantization_recipe: str | None = None  # torchao kinds: the recipe (kernel) that ran (quantize.RECIPES)
    quantization_seconds: float | None = None  # quantizing the loaded weights, once, all models
    quantization_quality: dict[str, Any] | None = None  # fixed texts' perplexity before and after

    def as_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _quantized_cache_or_dynamic(notes: list[str]) -> str:
    if _has("optimum.quanto") or _has("hqq"):
        return "quantized"
    notes.append(f"cache_implementation 'quantized' skipped: needs optimum-quanto ({QUANT_HINT}); ran 'dynamic'")
    return "dynamic"


def reference_cache(settings: Settings) -> None:
    """The fast engine could not run: the reference engine's cache kind is what runs, noted."""
    if settings.cache_implementation == "quantized":
        settings.cache_implementation = _quantized_cache_or_dynamic(settings.notes)


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
    tp_size = getattr(config, "tensor_parallel_size", 1)
    if tp_size > 1 and on_gpu:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"  # one GPU per rank

    dtype = config.dtype if config.dtype != "auto" else ("bfloat16" if on_gpu else "float32")

    if config.use_flash_attention and on_gpu and _has("flash_attn"):
        attention = "flash_attention_2"
    else:
        attention = "sdpa"
        if config.use_flash_attention:
            why = "no CUDA device" if not on_gpu else "the flash-attn package is not installed"
            notes.append(f"use_flash_attention skipped: {why}; ran 'sdpa' (PyTorch's fused attention)")

    from infercomp.quantize import QuantizationError, resolve

    try:
        quantization, recipe, quant_notes = resolve(
            getattr(config, "quantization", "none"), config.use_quantization, device, dtype, config.load_format, tp_size
        )
    except QuantizationError as exc:
        raise ModelLoadError(str(exc)) from None
    notes.extend(quant_notes)

    cache = config.cache_implementation
    if cache == "offloaded" and not on_gpu:
        notes.append("cache_implementation 'offloaded' skipped: it needs a CUDA device; ran 'dynamic'")
        cache = "dynamic"
    elif cache == "quantized" and getattr(config, "engine", "transformers") != "fast":  # the fast one needs no package
        cache = _quantized_cache_or_dynamic(notes)

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
        tensor_parallel_size=tp_size,
        auto_compile=AUTO_COMPILE if on_gpu and cache == "static" else "no",
        quantization_recipe=recipe,
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
        raise ModelLoadError(f"tokenizer for {name!r} could not be loaded: {one_line(exc)}") from None
    tok.padding_side = "left"  # rows of a batch must end at the same position for generation
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(name: str, settings: Settings, config, seed: int = 0):
    """Load one model on the run's device with its dtype, attention and quantization.

    Under tensor parallel the main model is sharded over the ranks; any other model (the
    assistant) is loaded whole on this rank's device."""
    import torch

    dtype = getattr(torch, settings.dtype)
    sharded = settings.tensor_parallel_size > 1 and name == config.main_model
    try:
        if settings.load_format == "random":
            model = _random_model(name, settings, config, dtype, seed, sharded)
        else:
            model = _stored_model(name, settings, config, dtype, sharded)
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"model {name!r} could not be loaded: {one_line(exc)}") from None
    model.eval()
    return model


def _stored_model(name: str, settings: Settings, config, dtype, sharded: bool):
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = dict(
        dtype=dtype,
        attn_implementation=settings.attention,
        trust_remote_code=config.trust_remote_code,
        use_safetensors=None if config.trust_remote_code else True,
    )
    if sharded:
        kwargs.update(tensor_parallel_kwargs())
    elif settings.quantization == "nf4":  # torchao kinds are applied after loading (quantize.apply)
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
        kwargs["device_map"] = {"": settings.device}
    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED.get(name, name)), **kwargs)
    if not sharded and settings.quantization != "nf4":
        model.to(settings.device)
    return model


def _random_model(name: str, settings: Settings, config, dtype, seed: int, sharded: bool):
    import torch

    model_config = _architecture_config(name, config)
    model_config._attn_implementation = settings.attention
    model = random_model(model_config, settings.device, dtype, seed, sharded)
    with torch.inference_mode():  # one short forward: random weights must still give finite logits
        logits = model(torch.arange(1, 9, device=settings.device)[None]).logits
    if not torch.isfinite(logits).all():
        raise ModelLoadError(f"model {name!r} with random weights gave non-finite logits in {settings.dtype}")
    return model


def random_model(model_config, device: str, dtype, seed: int = 0, sharded: bool = False):
    """Random weights without a download and without a full copy anywhere: transformers builds
    the model on the meta device, materialises only the parameters (or this rank's shards) on
    `device` and initialises them there; non-persistent buffers such as RoPE's inv_freq are
    recomputed from the config. An empty state dict makes every weight a "missing key"."""
    import torch
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING
    from transformers.utils import logging as hf_logging

    model_class = MODEL_FOR_CAUSAL_LM_MAPPING[type(model_config)]
    placement = tensor_parallel_kwargs() if sharded else {"device_map": {"": device}}
    torch.manual_seed(seed)  # the same seed on every rank
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its "weights newly initialized" report is the point here
    try:
        return model_class.from_pretrained(None, config=model_config, state_dict={}, dtype=dtype, **placement)
    finally:
        hf_logging.set_verbosity(level)


def tensor_parallel_kwargs() -> dict[str, Any]:
    """`from_pretrained` arguments for the model's own tensor-parallel plan. From transformers
    5.18 the plan goes through `DistributedConfig`; earlier releases take `tp_plan` directly."""
    try:
        from transformers import DistributedConfig
    except ImportError:
        return {"tp_plan": "auto"}
    return {"distributed_config": DistributedConfig(tp_plan="auto")}


def _architecture_config(name: str, config):
    from transformers import AutoConfig

    if name in ARCHITECTURES:
        return architecture_config(name)
    return AutoConfig.from_pretrained(str(local_folder(name)), trust_remote_code=config.trust_remote_code)


def parameter_count(model) -> int:
    """The model's parameters as trained: a packed linear (fast.packed) counts its out x in
    weights, which it holds as codes and scales (buffers), not parameters."""
    from infercomp.fast.packed import PackedLinear

    packed = sum(m.out_features * m.in_features for m in model.modules() if isinstance(m, PackedLinear))
    return sum(p.numel() for p in model.parameters()) + packed


def timed_load(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - start
