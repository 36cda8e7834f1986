"""The experiment config: the seed's JSON fields and defaults, typed and validated at the door.

Every problem becomes one `ConfigError` whose message names the field, what is allowed and what
was given; the CLI prints that line and exits 2. `--set key=value` overrides go through the same
validation as the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infercomp.methods import BASE_METHODS, method_names

PRESETS_DIR = Path(__file__).parent / "presets"
PRESETS = ("quick", "example", "comprehensive")  # the launcher offers these
# Presets by name as well: GPU-sized workloads the launcher does not offer (long_context: about
# 3,900-token prompts at batch 16 on Qwen3-4B random weights, for the KV-cache kinds).
PRESET_NAMES = PRESETS + ("long_context",)
CACHE_KINDS = ("dynamic", "static", "offloaded", "quantized")
EMBEDDED_PAIR = {"main_model": "embedded:main", "assistant_model": "embedded:assistant"}
SEED_PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "generate short bed time story containing word dog and sausage",
]


class ConfigError(ValueError):
    """A config problem, already phrased as the one line the user sees."""


class Config(BaseModel):
    """One experiment. Field names and defaults follow the seed's JSON config."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)

    # Models
    main_model: str = "Qwen/Qwen3-4B"
    assistant_model: str | None = "Qwen/Qwen3-0.6B"
    load_format: Literal["weights", "random"] = "weights"
    # Generation
    max_new_tokens: int = Field(150, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0)
    # Experiment
    prompts: list[str] = Field(default_factory=lambda: list(SEED_PROMPTS))
    required_words: list[list[str] | None] | None = None  # per prompt; null: parse the prompt
    num_completions: int | list[int] = 3
    batch_size: int = Field(4, ge=1)
    methods_to_test: list[str] | None = None
    # Performance switches
    use_quantization: bool = False  # legacy: the fastest 4-bit kind available (see `quantization`)
    # Weight quantization: int8 / int4 / fp8 through torchao, nf4 through bitsandbytes (reference engine)
    quantization: Literal["none", "int8", "int4", "fp8", "nf4"] = "none"
    use_flash_attention: bool = True
    use_speculative_decoding: bool = False
    cache_implementation: Literal["dynamic", "static", "offloaded", "quantized"] = "dynamic"
    # The fast engine's quantized cache: one byte per value, int8 or fp8 (e4m3), with a scale per
    # token and KV head (the reference engine's "quantized" is transformers' quanto int4 cache).
    kv_cache_dtype: Literal["int8", "fp8"] = "int8"
    num_assistant_tokens: int = Field(5, ge=1, le=64)
    adaptive_draft: bool = False  # tune the draft length from measured acceptance and cost
    draft_source: Literal["assistant", "prompt_lookup"] = "assistant"
    prompt_lookup_max_ngram: int = Field(3, ge=1, le=16)
    # Running
    engine: Literal["transformers", "fast"] = "fast"
    seed: int = 0
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    num_threads: int | None = Field(None, ge=1)
    warmup_runs: int = Field(1, ge=0)
    repeats: int = Field(3, ge=1)
    interleave: bool = False
    isolation: Literal["auto", "process", "none"] = "auto"
    baseline_method: str = "standard"
    fixed_length: bool = False
    output_dir: str = "results"
    trust_remote_code: bool = False
    quality: bool = True
    # Ranks (one GPU each, or CPU processes) the main model is sharded over; >1 launches them.
    tensor_parallel_size: int = Field(1, ge=1)

    @field_validator("prompts")
    @classmethod
    def _prompts_present(cls, prompts: list[str]) -> list[str]:
        if not prompts:
            raise ValueError("at least one prompt is required")
        if any(not p.strip() for p in prompts):
            raise ValueError("prompts must not be empty strings")
        return prompts

    @field_validator("num_completions")
    @classmethod
    def _completions_positive(cls, value: int | list[int]) -> int | list[int]:
        counts = value if isinstance(value, list) else [value]
        if not counts or any(c < 1 for c in counts):
            raise ValueError("every completion count must be an integer >= 1")
        return value

    @field_validator("methods_to_test")
    @classmethod
    def _methods_known(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        if not names:
            raise ValueError("list at least one method, or use null for all")
        known = method_names()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; allowed: {', '.join(known)}")
        return names

    @field_validator("baseline_method")
    @classmethod
    def _baseline_known(cls, name: str) -> str:
        known = method_names()
        if name not in known:
            raise ValueError(f"unknown method {name!r}; allowed: {', '.join(known)}")
        return name

    @field_validator("device")
    @classmethod
    def _device_form(cls, device: str) -> str:
        if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
            return device
        raise ValueError("allowed: 'auto', 'cpu', 'cuda' or 'cuda:N'")

    @model_validator(mode="after")
    def _completions_match_prompts(self) -> Config:
        if isinstance(self.num_completions, list) and len(self.num_completions) != len(self.prompts):
            raise ValueError(
                f"num_completions: a list needs one entry per prompt ({len(self.prompts)}); "
                f"got {len(self.num_completions)} entries"
            )
        return self

    @model_validator(mode="after")
    def _required_words_match_prompts(self) -> Config:
        if self.required_words is not None and len(self.required_words) != len(self.prompts):
            raise ValueError(
                f"required_words: needs one entry (a list of words, or null) per prompt ({len(self.prompts)}); "
                f"got {len(self.required_words)} entries"
            )
        return self

    @model_validator(mode="after")
    def _interleave_needs_one_process(self) -> Config:
        if self.interleave and self.isolation == "process":
            raise ValueError(
                "interleave: runs methods in turn inside one process, so it needs isolation 'none' or "
                "'auto'; got isolation 'process'"
            )
        return self

    @model_validator(mode="after")
    def _tensor_parallel_compatible(self) -> Config:
        if self.tensor_parallel_size == 1:
            return self
        clash = {
            "device": self.device.startswith("cuda:") and "pins one GPU; use 'cuda' or 'auto' (rank i uses GPU i)",
            "isolation": self.isolation == "process"
            and "'process' cannot hold the ranks' process group; use 'auto' or 'none'",
            "adaptive_draft": self.adaptive_draft
            and "true would let each rank pick its own draft length from its own clock; use false",
        }
        for name, why in clash.items():
            if why:
                raise ValueError(f"{name} with tensor_parallel_size {self.tensor_parallel_size}: {why}")
        return self

    # Derived views used by the planner and the runner.
    def completions_per_prompt(self) -> list[int]:
        if isinstance(self.num_completions, int):
            return [self.num_completions] * len(self.prompts)
        return list(self.num_completions)

    def selected_methods(self) -> list[str]:
        """Methods to run, in order: the chosen ones, each followed by its speculative variant
        when `use_speculative_decoding` is on."""
        chosen = self.methods_to_test or list(BASE_METHODS)
        out: list[str] = []
        for name in chosen:
            if name not in out:
                out.append(name)
            variant = f"{name}_speculative"
            if self.use_speculative_decoding and name in BASE_METHODS and variant not in out:
                out.append(variant)
        return out


def _describe(error: dict[str, Any]) -> str:
    """One readable line for pydantic's first error: field, what is allowed, what was given."""
    loc = ".".join(str(p) for p in error["loc"] if not isinstance(p, int) or len(error["loc"]) > 1)
    kind = error["type"]
    given = error.get("input")
    if kind == "extra_forbidden":
        allowed = ", ".join(Config.model_fields)
        return f"unknown field {loc!r}; allowed fields: {allowed}"
    if kind == "missing":
        return f"field {loc!r} is required"
    msg = error["msg"].removeprefix("Value error, ")
    if loc:
        return f"field {loc!r}: {msg}; got {given!r}"
    return f"{msg}"


def validate_config(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("config error: " + _describe(exc.errors()[0])) from None


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, value); the value is read as JSON when it parses, else a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. --set batch_size=8")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def read_config_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists() and str(path) in PRESET_NAMES:
        p = preset_path(str(path))
    if p.is_dir():
        raise ConfigError(
            f"config file {str(path)!r} is a directory; give a JSON file or a preset: {', '.join(PRESETS)}"
        )
    if not p.is_file():
        raise ConfigError(f"config file {str(path)!r} not found (or name a preset: {', '.join(PRESET_NAMES)})")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8 JSON"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} must hold a JSON object; got {type(data).__name__}")
    return data


def preset_path(name: str) -> Path:
    return PRESETS_DIR / f"config_{name}.json"


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    embedded: bool = False,
) -> Config:
    """Read a config file (or a preset name), apply overrides, validate once.

    With no path, the quick preset on the embedded pair: the run that works on any machine.
    """
    if path is None:
        path, embedded = "quick", True
    data = read_config_file(path)
    if embedded:
        data.update(EMBEDDED_PAIR)
    if isinstance(overrides, dict):
        data.update(overrides)
    else:
        for text in overrides or []:
            key, value = parse_override(text)
            data[key] = value
    return validate_config(data)
