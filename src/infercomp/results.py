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

SCHEMA_VERSION = 2
RESULTS_FILE = "results.json"


class CompletionRecord(BaseModel):
    prompt_index: int
    completion_index: int  # 0.. within its prompt, in the order the method produced them
    text: str
    prompt_tokens: int
    new_tokens: int  # generated tokens up to and including the first EOS; no padding
    finish: Literal["eos", "length"]
    call_index: int  # which planned generate call produced it
    call_time_s: float  # median over repeats of that call's wall time (shared by a batch's rows)
    call_times_s: list[float] = Field(default_factory=list)  # that call's wall time in each repeat
    tokens_per_second: float  # new_tokens / call_time_s
    token_ids: list[int] = Field(default_factory=list)  # the counted new tokens
    perplexity: float | None = None  # of the new tokens under the main model, teacher-forced


class Stats(BaseModel):
    median: float | None
    p90: float | None
    min: float | None
    max: float | None
    cv: float | None  # coefficient of variation: stdev / mean


class Speedup(BaseModel):
    baseline: str
    value: float  # median tokens/s over the baseline's median tokens/s
    ci95: tuple[float, float]  # percentile bootstrap over repeats


class Memory(BaseModel):
    cpu_rss_peak_gb: float  # whole process, sampled every 5 ms
    gpu_allocated_peak_gb: float | None = None  # torch.cuda.max_memory_allocated
    gpu_reserved_peak_gb: float | None = None  # torch.cuda.max_memory_reserved (allocator cache)
    nvml_used_peak_gb: float | None = None  # device memory in use as NVML reports it
    weights_gb: float  # parameters and buffers of the models this method uses
    kv_cache_gb: float  # layers x KV heads x head_dim x 2 x dtype bytes x tokens x rows, largest call
    other_gb: float | None  # peak (GPU allocated, or CPU RSS) minus weights and KV cache


class Roofline(BaseModel):
    bytes_per_step_gb: float | None = None  # weights + KV cache a decode step must read
    step_time_s: float | None = None  # median inter-token latency
    achieved_gbs: float | None = None
    bandwidth_gbs: float | None = None  # measured device copy bandwidth
    share: float | None = None  # achieved / bandwidth
    unavailable: str | None = None


class Energy(BaseModel):
    joules: float | None = None
    joules_per_token: float | None = None
    unavailable: str | None = None  # "not available: ..." where there is no counter


class Summary(BaseModel):
    repeats: int
    calls: int  # planned generate calls per repeat
    completions: int
    new_tokens: int  # per repeat
    total_time_s: float  # median over repeats of the summed call wall times (warm-up excluded)
    total_time_s_runs: list[float]
    tokens_per_second: float  # median over repeats of new_tokens / total time
    tokens_per_second_runs: list[float]  # one figure per repeat
    tokens_per_second_stats: Stats
    latency_mean_s: float  # per completion: the wall time of the call it came from
    latency_median_s: float
    ttft_s: float | None  # median over calls and repeats: time to the first new token (prefill)
    ttft_p90_s: float | None = None
    inter_token_latency_s: float | None  # median over calls and repeats of decode seconds per token
    peak_memory_gb: float  # GPU: peak allocated; CPU: peak process RSS
    memory_kind: str  # "cuda_max_memory_allocated" or "process_rss"
    memory: Memory | None = None
    roofline: Roofline | None = None
    energy: Energy | None = None
    speedup: Speedup | None = None  # against config.baseline_method
    warmup_time_s: float | None = None  # the first (untimed) warm-up call: compile, allocator growth


class Quality(BaseModel):
    mean_perplexity: float | None = None
    distinct_1: float | None = None  # unique / all word unigrams across a prompt's completions
    distinct_2: float | None = None
    self_bleu: float | None = None  # 0-100, each completion against its prompt's others
    repetition: float | None = None  # share of repeated word 3-grams inside a completion
    required_word_rate: float | None = None  # completions containing every requested word
    required_word_rates: dict[str, float] = Field(default_factory=dict)
    exact_match_vs_greedy: float | None = None  # completions identical to greedy decoding
    mean_first_divergence: float | None = None  # tokens before the first difference from greedy
    pareto_optimal: bool | None = None  # no other method is both faster and lower in perplexity
    unavailable: str | None = None


class SpeculativeAccounting(BaseModel):
    draft_source: str  # "assistant" or "prompt_lookup"
    draft_length: float  # mean drafted tokens per round (k; varies with adaptive_draft)
    rounds: int
    drafted_tokens: int
    accepted_tokens: int
    acceptance_rate: float | None  # accepted / drafted
    mean_accepted_length: float | None  # tokens emitted per row-round: accepted drafts + 1
    accepted_histogram: list[int]  # row-rounds by number of accepted drafts (index 0..k)
    draft_time_s: float
    verify_time_s: float
    cost_ratio: float | None  # draft step time / main-model step time
    predicted_speedup: float | None  # E / (k c + 1), E = (1 - a^(k+1)) / (1 - a)
    measured_speedup: float | None = None  # tokens/s over the base method's, same run


class MethodResult(BaseModel):
    status: Literal["ok", "failed", "skipped"]
    reason: str | None = None  # why it failed or was skipped
    execution: str | None = None  # how it ran: "batched", "per-sequence", ...
    fallback: str | None = None  # set when a method ran as its base method, and why
    generation: dict[str, Any] = Field(default_factory=dict)  # sampling settings passed to generate
    completions: list[CompletionRecord] = Field(default_factory=list)
    summary: Summary | None = None
    quality: Quality | None = None
    speculative: SpeculativeAccounting | None = None  # draft-and-verify counts and times
    speculation: str | None = None  # why a speculative variant ran without speculation


class Results(BaseModel):
    schema_version: int = SCHEMA_VERSION
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    config: dict[str, Any]
    settings: dict[str, Any] = Field(default_factory=dict)  # what the switches meant here
    models: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    methods: dict[str, MethodResult] = Field(default_factory=dict)
    incomplete: list[str] = Field(default_factory=list)  # planned methods not yet run (resume runs them)
    tensor_parallel: dict[str, Any] | None = None  # ranks, collectives, per-rank memory (tensor_parallel_size > 1)

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
        "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
        "device": device,
        "git_revision": git_revision(),
        "versions": {
            p: _version(p)
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
