"""What a run records about where it ran: Python, platform, CPU, threads, package versions,
infercomp's own commit, and the GPU and its driver."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def package_version(package: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> str | None:
    """infercomp's own commit (with '-dirty' when its tree has changes), read from the source
    checkout this package runs from; None for an installed copy. Never the current folder's
    repository: a run started inside another project must not record that project's commit."""
    package = Path(__file__).resolve().parent
    try:
        top = subprocess.run(
            ["git", "-C", str(package), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        # Only a checkout of infercomp itself: its package lies at src/infercomp.
        if not top or Path(top).resolve() / "src" / "infercomp" != package:
            return None
        rev = subprocess.run(
            ["git", "-C", top, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", top, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def infercomp_version() -> str:
    from infercomp.version import __version__

    return package_version("infercomp") or __version__


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture_environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
        "device": device,
        "infercomp_version": infercomp_version(),
        "git_revision": git_revision(),  # of infercomp's source checkout; None when installed
        "versions": {
            p: package_version(p)
            for p in (
                "infercomp",
                "torch",
                "transformers",
                "accelerate",
                "torchao",
                "bitsandbytes",
                "optimum-quanto",
                "flash-attn",
                "tokenizers",
            )
        },
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 1e9, 2),
            cuda=torch.version.cuda,
            gpu_driver=nvidia_driver(),
        )
    return env


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None
