"""The run: config -> plan -> engine -> each method's calls, measured -> results on disk.

Each method is warmed up, then timed over `repeats` passes of all its planned calls. A method
that raises (or runs out of memory) is recorded `failed` with its reason and the rest continue.
With isolation 'process' (the default on GPU) each method runs in a fresh Python process, so state
one method leaves behind (allocator caches, compiled graphs, mutated generation configs) cannot
touch the next. The output folder is locked for the run (lockfile.py); results.json is saved at
the start and after every method, and each finished timed call at once (checkpoint.py), so
`resume=True` keeps finished methods and continues a method in progress without running any of
its saved calls again.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infercomp.config import Config, ConfigError
from infercomp.methods import get_method
from infercomp.methods.base import Method, recorded_generation
from infercomp.plan import MethodPlan, make_plan
from infercomp.results import (
    CompletionRecord,
    Energy,
    Memory,
    MethodResult,
    Quality,
    Results,
    Roofline,
    SpeculativeAccounting,
    Speedup,
    Stats,
    Summary,
    capture_environment,
)

# Called with (method name, calls done, calls planned) as a run progresses.
Progress = Callable[[str, int, int], None]

OOM_REMEDIES = (
    "out of memory: try use_quantization, cache_implementation 'offloaded', a smaller batch_size "
    "or fewer max_new_tokens"
)


_INTERRUPTED = 0  # the signal number that stopped the run, 0 while running


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered, so an interrupt that some
    library turns into an ordinary exception still stops the run instead of failing one method."""
    import signal

    def handler(signum, frame):
        global _INTERRUPTED
        _INTERRUPTED = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def interrupt_signal() -> int:
    """The signal that interrupted the run (2 SIGINT, 15 SIGTERM), or 0."""
    return _INTERRUPTED


def configure_threads(config: Config) -> int:
    """Fix torch's CPU thread count: the default and the OpenMP wait policy swing CPU timings
    several-fold when anything else uses the cores."""
    import torch

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # effective only before torch starts OpenMP
    threads = config.num_threads or _physical_cores()
    torch.set_num_threads(threads)
    return threads


def _physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def isolation_mode(config: Config) -> str:
    if config.isolation != "auto":
        return config.isolation
    if config.interleave:
        return "none"
    import torch

    on_gpu = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    return "process" if on_gpu else "none"


# ---------------------------------------------------------------------------------------------
# The run


def run_experiment(
    config: Config, output_dir: str | Path | None = None, progress: Progress | None = None, resume: bool = False
) -> Results:
    """Run every selected method of `config`; save as calls finish; return the results.

    The output folder is locked for the run (a second run into it refuses). results.json is
    written at the start and after each method; each finished timed call goes to
    checkpoint.jsonl at once. With `resume`, the methods results.json holds are kept, and a
    method in progress continues from its saved calls (its config must match, apart from the
    output folder).
    """
    from infercomp.lockfile import OutputLock

    out_dir = Path(output_dir if output_dir is not None else config.output_dir)
    with OutputLock(out_dir):
        return _run_locked(config, out_dir, progress, resume)


def _run_locked(config: Config, out_dir: Path, progress: Progress | None, resume: bool) -> Results:
    from infercomp.checkpoint import Checkpoint

    plans = make_plan(config)
    results = load_for_resume(config, out_dir) if resume else None
    checkpoint = Checkpoint(out_dir)
    if results is None:
        checkpoint.remove()  # saved calls of some other run: never mix them in
        results = Results(config=config.model_dump(mode="json"))
    todo = [p for p in plans if p.method not in results.methods]
    results.incomplete = [p.method for p in todo]
    results.save(out_dir)  # from the start, so --resume has the config even if no method finished
    if todo:
        if isolation_mode(config) == "process":
            _run_isolated(config, todo, results, out_dir, progress, checkpoint)
        else:
            _run_in_process(config, todo, results, out_dir, progress, checkpoint)
    finalize(results, config, plans)
    results.save(out_dir)
    checkpoint.remove()
    return results


def finalize(results: Results, config: Config, plans: list[MethodPlan]) -> None:
    """Methods in plan order, then the figures that compare methods (speedups, Pareto front)."""
    results.methods = {p.method: results.methods[p.method] for p in plans if p.method in results.methods}
    annotate_speedups(results, config.baseline_method)
    annotate_pareto(results)
    annotate_measured_speedups(results)
    results.incomplete = []


def load_for_resume(config: Config, out_dir: Path) -> Results | None:
    if not (out_dir / "results.json").exists():
        return None
    previous = Results.load(out_dir)
    mine = config.model_dump(mode="json")
    theirs = dict(previous.config)
    mine.pop("output_dir"), theirs.pop("output_dir", None)
    if mine != theirs:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise ConfigError(
            f"resume: the config differs from the one in {out_dir}/results.json (fields: {', '.join(changed)})"
        )
    return previous


def _finish_method(results: Results, name: str, record: MethodResult, out_dir: Path, checkpoint) -> None:
    results.methods[name] = record
    if name in results.incomplete:
        results.incomplete.remove(name)
    results.save(out_dir)
    checkpoint.forget(name)  # results.json holds its calls now


def _run_in_process(
    config: Config, todo: list[MethodPlan], results: Results, out_dir: Path, progress, checkpoint
) -> None:
    from infercomp.loader import load_engine
    from infercomp.measure.bandwidth import measure_bandwidth_gbs
    from infercomp.measure.load import OtherLoad

    configure_threads(config)
    need_assistant = config.draft_source == "assistant" and any(p.method.endswith("_speculative") for p in todo)
    if progress:
        progress("loading models", 0, 1)
    engine = load_engine(config, need_assistant)
    if progress:
        progress("loading models", 1, 1)
    if not results.environment:
        results.settings = engine.settings.as_record()
        results.models = engine.describe_models()
        results.environment = capture_environment(engine.settings.device)
        results.environment["memory_bandwidth_gbs"] = measure_bandwidth_gbs(engine.settings.device)
    bandwidth = results.environment.get("memory_bandwidth_gbs")
    runs = [MethodRun(engine, get_method(p.method), p, bandwidth, call_hook=checkpoint.hook(p.method)) for p in todo]
    if config.interleave:
        # A B C A B C ...: slow drift (thermal, other load) spreads over all methods alike.
        with OtherLoad() as load:
            for run in runs:
                run.warm_up()
            for repeat in range(config.repeats):
                for run in runs:
                    run.measure_repeat(repeat, progress)
        results.settings["compile"] = engine.settings.compile  # the fast engine's record grows per shape
        for run in runs:
            record = run.result().model_copy(update={"cpu_load": load.record()})
            _finish_method(results, run.method.name, record, out_dir, checkpoint)
        return
    for run in runs:
        with OtherLoad() as load:
            run.warm_up()
            for repeat in range(config.repeats):
                run.measure_repeat(repeat, progress)
        record = run.result().model_copy(update={"cpu_load": load.record()})
        results.settings["compile"] = engine.settings.compile  # the fast engine's record grows per shape
        _finish_method(results, run.method.name, record, out_dir, checkpoint)


def _run_isolated(
    config: Config, todo: list[MethodPlan], results: Results, out_dir: Path, progress, checkpoint
) -> None:
    """One fresh process per method; a crash (even a segfault) is recorded as that method's failure."""
    with tempfile.TemporaryDirectory(prefix="infercomp-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(config.model_dump_json())
        for plan in todo:
            if progress:  # the worker reports nothing until it ends: show the method as started
                progress(f"{plan.method} (own process)", 0, 1)
            out = Path(tmp) / f"{plan.method}.json"
            proc = subprocess.run(
                [sys.executable, "-m", "infercomp.worker", str(config_path), plan.method, str(out), str(out_dir)],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0 and out.exists():
                payload = json.loads(out.read_text())
                if not results.environment:
                    results.settings, results.models = payload["settings"], payload["models"]
                    results.environment = payload["environment"]
                record = MethodResult.model_validate(payload["result"])
            else:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                record = MethodResult(
                    status="failed", reason=f"worker process exited with code {proc.returncode}: {tail}"
                )
            if progress:
                progress(f"{plan.method} (own process)", 1, 1)
            _finish_method(results, plan.method, record, out_dir, checkpoint)


def run_one_method(config: Config, method_name: str, checkpoint_dir: str | None = None) -> dict:
    """What a worker process does: load, run one method, return everything the parent records.
    With `checkpoint_dir`, each finished call is saved there (and saved ones replayed)."""
    from infercomp.checkpoint import Checkpoint
    from infercomp.loader import load_engine
    from infercomp.measure.bandwidth import measure_bandwidth_gbs
    from infercomp.measure.load import OtherLoad

    configure_threads(config)
    plan = next(p for p in make_plan(config) if p.method == method_name)
    engine = load_engine(
        config, need_assistant=method_name.endswith("_speculative") and config.draft_source == "assistant"
    )
    environment = capture_environment(engine.settings.device)
    environment["memory_bandwidth_gbs"] = measure_bandwidth_gbs(engine.settings.device)
    hook = Checkpoint(checkpoint_dir).hook(method_name) if checkpoint_dir else None
    run = MethodRun(engine, get_method(method_name), plan, environment["memory_bandwidth_gbs"], call_hook=hook)
    with OtherLoad() as load:
        run.warm_up()
        for repeat in range(config.repeats):
            run.measure_repeat(repeat, None)
    return {
        "result": run.result().model_copy(update={"cpu_load": load.record()}).model_dump(mode="json"),
        "settings": engine.settings.as_record(),
        "models": engine.describe_models(),
        "environment": environment,
    }


# ---------------------------------------------------------------------------------------------
# One method's measurement


@dataclass
class RepeatSample:
    total_time_s: float
    new_tokens: int
    call_times: list[float]
    ttfts: list[float]
    itls: list[float]


@dataclass
class MethodRun:
    """One method's state across warm-up and repeats; any exception turns it into `failed`."""

    engine: object
    method: Method
    plan: MethodPlan
    bandwidth_gbs: float | None
    error: str | None = None
    skip: str | None = None
    warmup_time_s: float | None = None  # all warm-up calls
    warmup_first_call_s: float | None = None  # the very first call: compilation, first touches
    warmup_shapes: list = field(default_factory=list)  # distinct (rows, padded prompt tokens)
    compile_s: float = 0.0  # fast engine: compiling / capturing steps in warm-up calls
    compile_timed_s: float = 0.0  # ... and in timed calls (a shape the warm-up missed)
    samples: list[RepeatSample] = field(default_factory=list)
    completions: list[CompletionRecord] = field(default_factory=list)
    peaks: list = field(default_factory=list)
    joules: float | None = None
    energy_unavailable: str | None = None
    max_context: int = 0
    max_rows: int = 0
    kv_cache_bytes: int | None = None  # largest measured cache a call left; None: not measurable
    kv_unmeasured: bool = False  # some call could not report its cache
    call_shapes: list = field(default_factory=list)  # CallShape of every timed call, for the roofline
    spec: object = None  # SpecStats summed over the timed repeats
    # (repeat, call index, run) -> outputs: saves each finished call, replays saved ones on resume
    call_hook: Callable | None = None

    def __post_init__(self) -> None:
        self.skip = self.method.skip_reason(self.engine)

    @property
    def active(self) -> bool:
        return self.skip is None and self.error is None

    def _guard(self, fn) -> None:
        if not self.active:
            return
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - any failure of one method must not stop the run
            if _INTERRUPTED:
                raise KeyboardInterrupt from exc
            self.error = failure_reason(exc)
            self.engine.free()

    def call_shape(self, batch: list[int]) -> tuple[int, int]:
        """(rows, padded prompt tokens) of a planned call: what kernels, compiled graphs and
        static caches are specialised on."""
        engine = self.engine
        longest = max(len(engine.tokenizer(engine.config.prompts[p])["input_ids"]) for p in batch)
        return len(batch), longest

    def warm_up(self) -> None:
        """Run every distinct call shape of the plan `warmup_runs` times before timing, so one-time
        costs (compilation, allocator growth, kernel selection) of a shape met only in a later
        call cannot land inside a timed repeat. Their time is recorded, kept out of every figure."""

        def go() -> None:
            first: dict[tuple[int, int], list[int]] = {}
            for batch in self.plan.batches:
                first.setdefault(self.call_shape(batch), batch)
            self.warmup_shapes = list(first) if self.engine.config.warmup_runs else []
            total = 0.0
            for i in range(self.warmup_passes()):
                for batch in first.values():
                    outputs = self.method.run_call(self.engine, batch)
                    seconds = sum(o.seconds for o in outputs)
                    self.compile_s += sum(o.compile_s for o in outputs)
                    if i == 0 and self.warmup_first_call_s is None:
                        self.warmup_first_call_s = seconds
                    total += seconds
            self.warmup_time_s = total if self.warmup_passes() else None

        self._guard(go)

    def warmup_passes(self) -> int:
        """`warmup_runs`, or at least 3 where transformers compiles generate() by itself: its
        compiled forward runs CUDA graphs that are recorded on a shape's second call and replayed
        from the third (on an H100 one warm-up call left timed repeat 0 1.27x the later ones)."""
        runs = self.engine.config.warmup_runs
        if runs and str(getattr(self.engine.settings, "auto_compile", "no")).startswith("yes"):
            return max(runs, 3)
        return runs

    def measure_repeat(self, repeat: int, progress: Progress | None) -> None:
        # Like timeit: collect garbage first and keep the collector out of the timed calls, so a
        # collection triggered by earlier allocations does not land inside one method's timing.
        gc.collect()
        gc.disable()
        try:
            self._guard(lambda: self._measure(repeat, progress))
        finally:
            gc.enable()

    def _measure(self, repeat: int, progress: Progress | None) -> None:
        import torch

        from infercomp.measure.energy import EnergyMeter
        from infercomp.measure.memory import PeakMemory

        engine = self.engine
        # Same seed every repeat: sampled texts repeat exactly, so repeats differ only in timing.
        torch.manual_seed(engine.config.seed)
        sample = RepeatSample(0.0, 0, [], [], [])
        seen: dict[int, int] = {}
        call_index = 0
        with PeakMemory(engine.settings.device) as memory, EnergyMeter(engine.settings.device) as energy:
            for done, batch in enumerate(self.plan.batches, start=1):
                run = functools.partial(self.method.run_call, engine, batch)
                outputs = run() if self.call_hook is None else self.call_hook(repeat, done - 1, run)
                for output in outputs:
                    self.compile_timed_s += output.compile_s
                    sample.call_times.append(output.seconds)
                    sample.total_time_s += output.seconds
                    if output.ttft_s is not None:
                        sample.ttfts.append(output.ttft_s)
                    if output.inter_token_latency_s is not None:
                        sample.itls.append(output.inter_token_latency_s)
                    self.max_context = max(self.max_context, output.context_tokens)
                    if output.kv_cache_bytes is None:
                        self.kv_unmeasured = True
                    else:
                        self.kv_cache_bytes = max(self.kv_cache_bytes or 0, output.kv_cache_bytes)
                    if output.speculative is not None:
                        if self.spec is None:
                            self.spec = output.speculative
                        else:
                            self.spec.add(output.speculative)
                    self.max_rows = max(self.max_rows, len(output.rows))
                    self.call_shapes.append(self._call_shape(output))
                    for row in output.rows:
                        sample.new_tokens += len(row.token_ids)
                        if repeat == 0:
                            self.completions.append(
                                CompletionRecord(
                                    prompt_index=row.prompt_index,
                                    completion_index=seen.get(row.prompt_index, 0),
                                    text=engine.decode(row.token_ids),
                                    prompt_tokens=row.prompt_tokens,
                                    new_tokens=len(row.token_ids),
                                    finish=row.finish,
                                    call_index=call_index,
                                    call_time_s=output.seconds,
                                    tokens_per_second=0.0,
                                    token_ids=row.token_ids,
                                )
                            )
                            seen[row.prompt_index] = seen.get(row.prompt_index, 0) + 1
                    call_index += 1
                if progress:
                    progress(
                        self.method.name,
                        done + repeat * len(self.plan.batches),
                        len(self.plan.batches) * engine.config.repeats,
                    )
        self.samples.append(sample)
        self.peaks.append(memory.peaks)
        if energy.joules is not None:
            self.joules = (self.joules or 0.0) + energy.joules
        self.energy_unavailable = energy.unavailable

    def result(self) -> MethodResult:
        engine = self.engine
        if self.skip:
            return MethodResult(status="skipped", reason=self.skip)
        record = MethodResult(
            status="ok",
            execution=self.method.execution(engine),
            fallback=self.method.fallback_reason(engine),
            speculation=self.method.speculation_note(engine),
            generation=recorded_generation(self.method, engine.config, self.plan.batches),
        )
        if self.error:
            return record.model_copy(update={"status": "failed", "reason": self.error})
        for c in self.completions:
            c.call_times_s = [s.call_times[c.call_index] for s in self.samples]
            c.call_time_s = _median(c.call_times_s)
            c.tokens_per_second = c.new_tokens / c.call_time_s
        summary = self.summary()
        quality = self.quality()  # after every timed call: scoring never touches the timings
        return record.model_copy(
            update={
                "completions": self.completions,
                "summary": summary,
                "quality": quality,
                "speculative": self.accounting(),
            }
        )

    def accounting(self) -> SpeculativeAccounting | None:
        from infercomp.speculative.engine import predicted_speedup

        st = self.spec
        if st is None:
            return None
        alpha = st.accepted / st.drafted if st.drafted else None
        k = sum(st.draft_lengths) / len(st.draft_lengths) if st.draft_lengths else 0.0
        cost = None
        if st.verify_steps:
            main_step = st.verify_time_s / st.verify_steps
            cost = (st.draft_time_s / st.draft_steps) / main_step if st.draft_steps else 0.0
        row_rounds = sum(st.histogram)
        return SpeculativeAccounting(
            draft_source=self.engine.config.draft_source,
            draft_length=k,
            rounds=st.rounds,
            drafted_tokens=st.drafted,
            accepted_tokens=st.accepted,
            acceptance_rate=alpha,
            mean_accepted_length=(st.accepted + row_rounds) / row_rounds if row_rounds else None,
            accepted_histogram=st.histogram,
            draft_time_s=st.draft_time_s,
            verify_time_s=st.verify_time_s,
            cost_ratio=cost,
            predicted_speedup=None if alpha is None or cost is None else predicted_speedup(alpha, round(k), cost),
        )

    def quality(self) -> Quality | None:
        from infercomp.quality import score_method

        config = self.engine.config
        if not config.quality:
            return None
        if config.load_format == "random":
            return Quality(unavailable="not meaningful: the models have random weights")
        try:
            return Quality(**score_method(self.engine, self.completions))
        except Exception as exc:  # noqa: BLE001 - a scoring problem must not lose the timings
            return Quality(unavailable=f"scoring failed: {failure_reason(exc)}")

    def summary(self) -> Summary:
        from infercomp.measure.stats import describe, median, percentile

        rates = [s.new_tokens / s.total_time_s for s in self.samples]
        latencies = [c.call_time_s for c in self.completions]
        ttfts = [t for s in self.samples for t in s.ttfts]
        itls = [t for s in self.samples for t in s.itls]
        memory = self.memory()
        on_gpu = self.engine.settings.device.startswith("cuda")
        tokens = self.samples[0].new_tokens
        return Summary(
            repeats=len(self.samples),
            calls=len(self.samples[0].call_times),
            completions=len(self.completions),
            new_tokens=tokens,
            total_time_s=median([s.total_time_s for s in self.samples]),
            total_time_s_runs=[s.total_time_s for s in self.samples],
            tokens_per_second=median(rates),
            tokens_per_second_runs=rates,
            tokens_per_second_stats=Stats(**describe(rates)),
            latency_mean_s=sum(latencies) / len(latencies),
            latency_median_s=median(latencies),
            ttft_s=median(ttfts),
            ttft_p90_s=percentile(ttfts, 90),
            inter_token_latency_s=median(itls),
            peak_memory_gb=memory.gpu_allocated_peak_gb if on_gpu else memory.cpu_rss_peak_gb,
            memory_kind="cuda_max_memory_allocated" if on_gpu else "process_rss",
            memory=memory,
            roofline=self.roofline(),
            energy=Energy(joules=self.joules, joules_per_token=self.joules / (tokens * len(self.samples)))
            if self.joules is not None
            else Energy(unavailable=self.energy_unavailable),
            warmup_time_s=self.warmup_time_s,
            warmup_first_call_s=self.warmup_first_call_s,
            warmup_shapes=[list(shape) for shape in self.warmup_shapes],
            compile_time_s=self.compile_s + self.compile_timed_s if self.engine.settings.engine == "fast" else None,
            compile_in_timed_s=self.compile_timed_s if self.engine.settings.engine == "fast" else None,
        )

    def models_used(self) -> list:
        """The models this method's calls ran: the assistant only where it really drafted (not
        for beam_search_speculative, nor with prompt-lookup drafts, nor after a fallback)."""
        engine = self.engine
        drafts = getattr(self.method, "drafts", None)
        uses_assistant = (
            drafts is not None
            and drafts(engine)
            and engine.config.draft_source == "assistant"
            and engine.assistant is not None
        )
        return [engine.main] + ([engine.assistant] if uses_assistant else [])

    def memory(self) -> Memory:
        from infercomp.measure.memory import kv_bytes_per_token, weight_bytes

        def peak(attr: str) -> float | None:
            values = [getattr(p, attr) for p in self.peaks if getattr(p, attr) is not None]
            return max(values) if values else None

        models = self.models_used()
        weights = sum(weight_bytes(m) for m in models) / 1e9
        # Cross-check: bytes per token x the longest context x the most rows of any call.
        formula = sum(kv_bytes_per_token(m) for m in models) * self.max_context * self.max_rows / 1e9
        kv = None if self.kv_unmeasured or self.kv_cache_bytes is None else self.kv_cache_bytes / 1e9
        on_gpu = self.engine.settings.device.startswith("cuda")
        measured = peak("gpu_allocated_peak_gb") if on_gpu else peak("cpu_rss_peak_gb")
        return Memory(
            cpu_rss_peak_gb=peak("cpu_rss_peak_gb"),
            gpu_allocated_peak_gb=peak("gpu_allocated_peak_gb"),
            gpu_reserved_peak_gb=peak("gpu_reserved_peak_gb"),
            nvml_used_peak_gb=peak("nvml_used_peak_gb"),
            weights_gb=weights,
            kv_cache_gb=kv,
            kv_cache_formula_gb=formula,
            kv_cache_source="measured: cache tensors after the largest call"
            if kv is not None
            else "not measured: a call returned no inspectable cache; see kv_cache_formula_gb",
            other_gb=None if measured is None else measured - weights - (kv if kv is not None else formula),
        )

    def _call_shape(self, output):
        """What the roofline needs of one call: rows, padded prompt, positions, time per pass."""
        from infercomp.measure.memory import kv_bytes_per_token
        from infercomp.measure.roofline import CallShape

        rows = len(output.rows)
        prompt = max(r.prompt_tokens for r in output.rows)
        new = output.context_tokens - prompt
        slots = output.attended_slots
        if slots is None and self.engine.settings.cache_implementation == "static" and output.kv_cache_bytes:
            per_slot = sum(kv_bytes_per_token(m) for m in self.models_used()) * rows
            slots = output.kv_cache_bytes // per_slot
        st = output.speculative
        if st is not None:
            per_pass = st.verify_time_s / st.verify_steps if st.verify_steps else None
            k = sum(st.draft_lengths) / len(st.draft_lengths) if st.draft_lengths else 0.0
            return CallShape(rows, prompt, new, st.verify_steps, per_pass, slots, k + 1)
        return CallShape(rows, prompt, new, max(new - 1, 0), output.inter_token_latency_s, slots)

    def roofline(self) -> Roofline:
        """Bytes one forward pass reads (weights, with one embedding row per token; KV at each
        step's context), over its measured time, against the measured copy bandwidth."""
        from infercomp.measure.roofline import roofline

        speculative = self.spec is not None
        return Roofline(**roofline(self.engine.main, self.call_shapes, self.bandwidth_gbs, speculative))


def _median(values: list[float]) -> float:
    from infercomp.measure.stats import median

    return median(values)


def annotate_speedups(results: Results, baseline: str) -> None:
    """Each ok method's tokens/s over the baseline's, with the interval its repeats support: a
    range with few repeats, a bootstrap confidence interval with many; the baseline is exactly 1."""
    from infercomp.measure.stats import speedup_interval

    base = results.methods.get(baseline)
    if base is None or base.summary is None:
        return
    for m in results.methods.values():
        if m.summary is None:
            continue
        if m is base:
            m.summary.speedup = Speedup(baseline=baseline, value=1.0)
            continue
        value, interval, kind = speedup_interval(m.summary.tokens_per_second_runs, base.summary.tokens_per_second_runs)
        m.summary.speedup = Speedup(baseline=baseline, value=value, interval=interval, interval_kind=kind)


def annotate_measured_speedups(results: Results) -> None:
    """Each speculative method's tokens/s over its base method's, from the same run."""
    for name, m in results.methods.items():
        base = results.methods.get(name.removesuffix("_speculative"))
        if m.speculative and m.summary and base is not None and base.summary:
            m.speculative.measured_speedup = m.summary.tokens_per_second / base.summary.tokens_per_second


def annotate_pareto(results: Results) -> None:
    """Mark the methods no other beats on both tokens/s (higher) and mean perplexity (lower)."""
    from infercomp.quality import pareto_front

    points = {
        name: (m.summary.tokens_per_second, m.quality.mean_perplexity)
        for name, m in results.methods.items()
        if m.summary and m.quality and m.quality.mean_perplexity is not None
    }
    front = pareto_front(points)
    for name in points:
        results.methods[name].quality.pareto_optimal = name in front


def failure_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = f"{type(exc).__name__}: {text[0] if text else ''}"
    if "out of memory" in first.lower() or type(exc).__name__ == "OutOfMemoryError":
        return f"{first} ({OOM_REMEDIES})"
    return first
