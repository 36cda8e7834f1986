"""The result tree: one typed object per run that round-trips through JSON.

`Results.save(dir)` writes `dir/results.json` atomically (write a temporary file, then rename),
so an interrupted run leaves the last complete file, never a torn one. The schema is documented
in docs/RESULTS_SCHEMA.md; bump SCHEMA_VERSION when a field changes meaning.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

SCHEMA_VERSION = 4  # 4: MethodResult.speculation is named speculation_note (3 still loads)
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
    value: float  # median tokens/s over the baseline's median tokens/s; exactly 1 for the baseline
    interval: tuple[float, float] | None = None  # None for the baseline against itself
    interval_kind: str | None = None  # "range over N repeats ..." or "bootstrap percentile 95 % CI ..."

    def text(self) -> str:
        """'1.23x (range 1.10-1.40)', '1.23x (95% CI 1.10-1.40)' or '1.00x (baseline)'."""
        if self.interval is None:
            return f"{self.value:.2f}x (baseline)"
        label = "range" if (self.interval_kind or "").startswith("range") else "95% CI"
        return f"{self.value:.2f}x ({label} {self.interval[0]:.2f}-{self.interval[1]:.2f})"


class Memory(BaseModel):
    cpu_rss_peak_gb: float  # whole process, sampled every 5 ms
    gpu_allocated_peak_gb: float | None = None  # torch.cuda.max_memory_allocated
    gpu_reserved_peak_gb: float | None = None  # torch.cuda.max_memory_reserved (allocator cache)
    nvml_used_peak_gb: float | None = None  # device memory in use as NVML reports it
    weights_gb: float  # parameters and buffers of the models this method's calls ran
    kv_cache_gb: float | None = None  # measured: bytes of the cache tensors the largest call left
    kv_cache_formula_gb: float | None = None  # layers x KV heads x 2 x (head_dim x bytes + scales) x tokens x rows
    kv_cache_source: str | None = None  # "measured: ..." or why not
    other_gb: float | None  # peak (GPU allocated, or CPU RSS) minus weights and KV cache (measured)


class Roofline(BaseModel):
    pass_kind: str | None = None  # "decode step" or "verify pass (main model)"
    weights_per_step_gb: float | None = None  # weights a pass reads (one embedding row per token)
    kv_per_step_gb: float | None = None  # KV a pass reads at its context (prompt included)
    bytes_per_step_gb: float | None = None  # weights + KV, mean over every pass of every call
    step_time_s: float | None = None  # mean seconds per pass (decode step or verify pass)
    achieved_gbs: float | None = None  # all passes' bytes / all passes' time
    bandwidth_gbs: float | None = None  # measured device copy bandwidth
    share: float | None = None  # achieved / bandwidth
    meaningful: bool | None = None  # False: too small to be bandwidth-bound (see note)
    note: str | None = None
    unavailable: str | None = None


class Energy(BaseModel):
    """The whole GPU's energy over the timed repeats' windows (their calls and the host work
    between them), all repeats together."""

    joules: float | None = None
    joules_per_token: float | None = None  # joules over every repeat's new tokens
    window_s: float | None = None  # the wall time the joules were counted over
    mean_watts: float | None = None  # joules / window_s
    unavailable: str | None = None  # "not available: ..." (no counter) or "not measured: ..." (window too short)


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
    warmup_time_s: float | None = None  # all untimed warm-up calls (every distinct call shape)
    warmup_first_call_s: float | None = None  # the first of them: compilation, allocator growth
    warmup_shapes: list[list[int]] = Field(default_factory=list)  # [rows, padded prompt tokens] warmed
    # Fast engine: seconds spent compiling and capturing this method's steps (outside every call's
    # clock), and how much of it fell inside timed repeats (a shape the warm-up did not meet).
    compile_time_s: float | None = None
    compile_in_timed_s: float | None = None


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
    # Why a speculative variant ran without speculation (schema 3 called it "speculation").
    speculation_note: str | None = Field(default=None, validation_alias=AliasChoices("speculation_note", "speculation"))
    # Other processes' CPU use while it ran (measure/load.py): other_cores, other_share, steal_share, loaded
    cpu_load: dict[str, Any] | None = None


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
        write_atomic(target, self.model_dump_json(indent=2) + "\n")
        return target

    @classmethod
    def load(cls, path: str | Path) -> Results:
        path = Path(path)
        if path.is_dir():
            path = path / RESULTS_FILE
        results = cls.model_validate_json(path.read_text())
        results.schema_version = SCHEMA_VERSION  # read into today's fields: saved again in today's form
        return results


def write_atomic(target: Path, text: str) -> None:
    """Write a temporary file beside `target`, then rename: readers see the old or the new file,
    never a torn one. Created with mode 0666 less the umask, like any other file the run writes."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, target)
