"""The result tree: one typed object per run that round-trips through JSON.

`Results.save(dir)` writes `dir/results.json` atomically (write a temporary file, then rename),
so an interrupted run leaves the last complete file, never a torn one. The schema is documented
in docs/RESULTS_SCHEMA.md; bump SCHEMA_VERSION when a field changes meaning.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"


class CompletionRecord(BaseModel):
    prompt_index: int
    completion_index: int  # 0.. within its prompt, in the order the method produced them
    text: str
    prompt_tokens: int
    new_tokens: int  # generated tokens up to and including the first EOS; no padding
    finish: Literal["eos", "length"]
    call_index: int  # which timed generate call produced it
    call_time_s: float  # wall time of that call (shared by the rows of a batch)
    tokens_per_second: float  # new_tokens / call_time_s


class Summary(BaseModel):
    calls: int
    completions: int
    new_tokens: int
    total_time_s: float  # sum of the timed calls' wall times (warm-up excluded)
    tokens_per_second: float  # new_tokens / total_time_s
    latency_mean_s: float  # per completion: the wall time of the call it came from
    latency_median_s: float
    peak_memory_gb: float
    memory_kind: str  # "cuda_max_memory_allocated" or "process_rss"
    warmup_time_s: float | None = None  # wall time of the first (untimed) warm-up call


class MethodResult(BaseModel):
    status: Literal["ok", "failed", "skipped"]
    reason: str | None = None  # why it failed or was skipped
    execution: str | None = None  # how it ran: "batched", "per-sequence", ...
    fallback: str | None = None  # set when a method ran as its base method, and why
    generation: dict[str, Any] = Field(default_factory=dict)  # sampling settings passed to generate
    completions: list[CompletionRecord] = Field(default_factory=list)
    summary: Summary | None = None


class Results(BaseModel):
    schema_version: int = SCHEMA_VERSION
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    config: dict[str, Any]
    settings: dict[str, Any] = Field(default_factory=dict)  # what the switches meant here
    models: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    methods: dict[str, MethodResult] = Field(default_factory=dict)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / RESULTS_FILE
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".results-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            fh.write(self.model_dump_json(indent=2))
            fh.write("\n")
        os.replace(tmp, target)
        return target

    @classmethod
    def load(cls, path: str | Path) -> Results:
        path = Path(path)
        if path.is_dir():
            path = path / RESULTS_FILE
        return cls.model_validate_json(path.read_text())


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> str | None:
    """The checkout's commit (with '-dirty' when it has changes), or None outside git."""
    # The package's own checkout (editable installs), else the folder the run was started in.
    for where in (Path(__file__).resolve().parent, Path.cwd()):
        try:
            rev = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=where,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return rev + ("-dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            continue
    return None


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
        "device": device,
        "git_revision": git_revision(),
        "versions": {
            p: _version(p)
            for p in (
                "infercomp",
                "torch",
                "transformers",
                "accelerate",
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
            gpu_driver=_nvidia_driver(),
        )
    return env


def _nvidia_driver() -> str | None:
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
