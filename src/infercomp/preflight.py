"""Checks made before a run starts any process or loads any weights.

Each problem found here is bad input and becomes one `ConfigError` line (exit code 2):
- a CUDA device asked for on a machine where torch sees none;
- a model that cannot be found: a folder that holds no model, or a hub id that is not in the
  local cache while the hub cannot be reached (said at once, instead of minutes of retries);
- a prompt that, with `max_new_tokens`, does not fit the model's `max_position_embeddings`
  (read from the model's config.json or the built-in architecture, never from its weights).

When the hub cannot be reached but every model is local, Hugging Face's offline mode is turned
on for this process and its workers, so loading does not wait on network retries.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from infercomp.config import Config, ConfigError

HUB_HOST = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (False in offline mode)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def go_offline() -> None:
    """Hugging Face offline mode for this process (already imported or not) and its children."""
    import sys

    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def model_folder(name: str, load_format: str, online: bool | None) -> Path | None:
    """The local folder holding `name`'s config.json; None for a built-in random architecture or
    a hub id that will be downloaded. Raises ConfigError when the model cannot be had."""
    from infercomp.models import ARCHITECTURES, EMBEDDED

    if name in EMBEDDED:
        return EMBEDDED[name]
    if load_format == "random" and name in ARCHITECTURES:
        return None
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"model {name!r} is a file; give a model folder, a hub id or embedded:main")
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"model folder {name!r} holds no model: config.json is missing "
                "(a model folder needs config.json, tokenizer files and weights)"
            )
        return path
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ConfigError(f"model folder {name!r} does not exist")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 - any miss means: not in the local cache
        pass
    if online is False or (online is None and not hub_reachable()):
        raise ConfigError(
            f"model {name!r} is not in the local Hugging Face cache and the hub cannot be reached "
            "(offline); use --embedded, a local folder, or load_format random with a built-in architecture"
        )
    return None


def max_positions(name: str, folder: Path | None) -> int | None:
    """The model's max_position_embeddings from its config.json or built-in architecture."""
    from infercomp.models import ARCHITECTURES

    if folder is None:
        return ARCHITECTURES.get(name, {}).get("max_position_embeddings")
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = data.get("text_config", data)  # multimodal configs nest the language model's
    value = text.get("max_position_embeddings") if isinstance(text, dict) else None
    return value if isinstance(value, int) else None


def prompt_lengths(config: Config, folder: Path | None) -> list[int] | None:
    """Token counts of the prompts as the run will tokenize them (None if no tokenizer is local)."""
    from infercomp.models import EMBEDDED

    source = folder if folder is not None else (EMBEDDED["embedded:main"] if config.load_format == "random" else None)
    if source is None:
        return None
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(source))
    except Exception:  # noqa: BLE001 - loading reports a missing tokenizer with its own message
        return None
    return [len(ids) for ids in tok(config.prompts)["input_ids"]]


def check_prompt_fit(config: Config, folder: Path | None) -> None:
    limit = max_positions(config.main_model, folder)
    if limit is None:
        return
    lengths = prompt_lengths(config, folder)
    if lengths is None:
        return
    for i, n in enumerate(lengths):
        if n + config.max_new_tokens > limit:
            raise ConfigError(
                f"prompt {i} has {n} tokens; with max_new_tokens {config.max_new_tokens} that is "
                f"{n + config.max_new_tokens} positions, more than {config.main_model!r} allows "
                f"(max_position_embeddings {limit}); shorten the prompt or lower max_new_tokens"
            )


def check_device(config: Config) -> None:
    if not config.device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"config error: field 'device': {config.device!r} asked for, but torch sees no CUDA device")
    index = int(config.device[5:]) if config.device.startswith("cuda:") else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"config error: field 'device': {config.device!r} does not exist; "
            f"this machine has cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )


def check_settings(config: Config) -> None:
    """The INFERCOMP_* variables the fast engine's modules read as they load (fast.attend,
    fast.kvcache, fast.model; importing fast.model loads all three): a bad one stops the run
    here, before anything is written (errors.SettingError)."""
    if config.engine == "fast":
        import infercomp.fast.model  # noqa: F401


def preflight(config: Config, need_assistant: bool | None = None) -> None:
    """Every check above, for the models this config's methods load."""
    check_settings(config)
    check_device(config)
    online = None if not _any_hub_id(config) else hub_reachable()
    folder = model_folder(config.main_model, config.load_format, online)
    if need_assistant is None:
        need_assistant = config.draft_source == "assistant" and any(
            m.endswith("_speculative") for m in config.selected_methods()
        )
    if need_assistant and config.assistant_model:
        try:
            model_folder(config.assistant_model, config.load_format, online)
        except ConfigError:
            pass  # a missing assistant is a recorded fallback, not a stop: the engine notes it
    if online is False:
        go_offline()
    check_prompt_fit(config, folder)


def _any_hub_id(config: Config) -> bool:
    from infercomp.models import ARCHITECTURES, EMBEDDED

    for name in (config.main_model, config.assistant_model):
        if not name or name in EMBEDDED or Path(name).expanduser().exists():
            continue
        if config.load_format == "random" and name in ARCHITECTURES:
            continue
        return True
    return False
