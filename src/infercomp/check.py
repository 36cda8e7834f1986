"""The setup check: what is installed, which devices there are, and whether a config's models
can be reached, without downloading any weights."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from infercomp.environment import nvidia_driver, package_version

OPTIONAL = {
    "torchao": "int8 / int4 / fp8 weights (quantization): pip install 'infercomp[quant]'",
    "bitsandbytes": "nf4 weights (quantization 'nf4'): pip install 'infercomp[quant]'",
    "optimum-quanto": "quantized KV cache: pip install 'infercomp[quant]'",
    "flash-attn": "FlashAttention-2 kernels (else PyTorch SDPA runs): pip install flash-attn",
    "nvidia-ml-py": "GPU energy and device memory: pip install 'infercomp[gpu]'",
}


@dataclass
class Finding:
    item: str
    status: str  # "ok", "missing", "warning"
    detail: str
    fix: str = ""


def check_packages() -> list[Finding]:
    rows = [
        Finding(
            "python",
            "ok" if sys.version_info >= (3, 11) else "missing",
            sys.version.split()[0],
            "" if sys.version_info >= (3, 11) else "Python 3.11 or newer is required",
        )
    ]
    torch_v = package_version("torch")
    rows.append(
        Finding(
            "torch", "ok" if torch_v else "missing", torch_v or "not installed", "" if torch_v else "pip install torch"
        )
    )
    tf = package_version("transformers")
    tf_ok = tf is not None and tf.split(".")[0] == "5" and tuple(int(x) for x in tf.split(".")[:2]) >= (5, 17)
    rows.append(
        Finding(
            "transformers",
            "ok" if tf_ok else "missing",
            tf or "not installed",
            "" if tf_ok else "pip install 'transformers>=5.17,<6'",
        )
    )
    for name, why in OPTIONAL.items():
        v = package_version(name)
        rows.append(Finding(name, "ok" if v else "warning", v or "not installed (optional)", "" if v else why))
    return rows


def check_devices() -> list[Finding]:
    import torch

    if not torch.cuda.is_available():
        return [Finding("cuda", "warning", "no CUDA device: runs use the CPU", "a GPU build of torch and a CUDA GPU")]
    rows = []
    driver = nvidia_driver()
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        rows.append(
            Finding(
                f"cuda:{i}",
                "ok",
                f"{p.name}, {p.total_memory / 1e9:.1f} GB, CUDA {torch.version.cuda}, driver {driver}",
            )
        )
    return rows


def check_model(name: str | None, role: str, load_format: str) -> Finding:
    from infercomp.models import ARCHITECTURES, EMBEDDED

    if not name:
        return Finding(role, "warning", "none configured", "set assistant_model for the speculative variants")
    if name in EMBEDDED:
        ok = (EMBEDDED[name] / "config.json").exists()
        return Finding(role, "ok" if ok else "missing", f"{name}: embedded", "" if ok else "reinstall infercomp")
    if load_format == "random" and name in ARCHITECTURES:
        return Finding(role, "ok", f"{name}: built-in architecture, random weights")
    path = Path(name).expanduser()
    if path.is_dir():
        ok = (path / "config.json").exists()
        return Finding(
            role,
            "ok" if ok else "missing",
            f"{name}: local folder",
            "" if ok else "the folder needs config.json and weights",
        )
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(name, local_files_only=True)
        return Finding(role, "ok", f"{name}: in the Hugging Face cache")
    except Exception:  # noqa: BLE001 - any miss means: not cached
        pass
    if os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0"):
        return Finding(
            role,
            "missing",
            f"{name}: not cached, and HF_HUB_OFFLINE is set",
            "download it where the network is up, or use --embedded / load_format random",
        )
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(name, timeout=10)
        return Finding(role, "ok", f"{name}: on the hub (downloads on first run)")
    except Exception as exc:  # noqa: BLE001 - network down, unknown id, gated model
        return Finding(
            role,
            "missing",
            f"{name}: not cached and the hub did not answer ({type(exc).__name__})",
            "check the id and network, or use --embedded / load_format random",
        )


def run_checks(config) -> tuple[list[Finding], bool]:
    """All rows, and whether `config` can run here (main model reachable, core packages ok)."""
    rows = check_packages()
    core_ok = all(r.status == "ok" for r in rows[:3])
    if package_version("torch"):
        rows += check_devices()
    main = check_model(config.main_model, "main model", config.load_format)
    uses_assistant = config.draft_source == "assistant" and any(
        m.endswith("_speculative") for m in config.selected_methods()
    )
    rows.append(main)
    if uses_assistant:
        assistant = check_model(config.assistant_model, "assistant model", config.load_format)
        if assistant.status == "missing":  # the variants fall back to their base methods
            assistant.status = "warning"
            assistant.fix += " (speculative variants would run their base methods)"
        rows.append(assistant)
    return rows, core_ok and main.status == "ok"
