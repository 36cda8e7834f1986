"""The run: config -> plan -> engine -> each method's calls, measured -> results on disk.

Each method runs inside its own try: one that raises (or runs out of memory) is recorded
`failed` with its reason and the rest continue. Results are saved after every method, so an
interrupted run keeps everything already measured.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from infercomp.config import Config
from infercomp.methods import get_method
from infercomp.methods.base import Method
from infercomp.plan import MethodPlan, make_plan
from infercomp.results import CompletionRecord, MethodResult, Results, Summary, capture_environment

# Called with (method name, calls done, calls planned) as a run progresses.
Progress = Callable[[str, int, int], None]

OOM_REMEDIES = (
    "out of memory: try use_quantization, cache_implementation 'offloaded', a smaller "
    "batch_size or fewer max_new_tokens"
)


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


def run_experiment(config: Config, output_dir: str | Path | None = None, progress: Progress | None = None) -> Results:
    """Run every selected method of `config` and return (and save) the results."""
    from infercomp.engine import Engine

    configure_threads(config)
    plans = make_plan(config)
    need_assistant = any(get_method(p.method).name.endswith("_speculative") for p in plans)
    engine = Engine.load(config, need_assistant)
    results = Results(
        config=config.model_dump(mode="json"),
        settings=engine.settings.as_record(),
        models=engine.describe_models(),
        environment=capture_environment(engine.settings.device),
    )
    out_dir = Path(output_dir if output_dir is not None else config.output_dir)
    for plan in plans:
        results.methods[plan.method] = run_method(engine, get_method(plan.method), plan, progress)
        results.save(out_dir)
    results.save(out_dir)
    return results


def run_method(engine, method: Method, plan: MethodPlan, progress: Progress | None = None) -> MethodResult:
    reason = method.skip_reason(engine)
    if reason:
        return MethodResult(status="skipped", reason=reason)
    base = MethodResult(
        status="ok",
        execution=method.execution(engine),
        fallback=method.fallback_reason(engine),
        generation=method.generation_kwargs(engine.config, 1),
    )
    try:
        return measure_method(engine, method, plan, base, progress)
    except Exception as exc:  # noqa: BLE001 - any failure of one method must not stop the run
        engine.free()
        return base.model_copy(update={"status": "failed", "reason": failure_reason(exc)})


def measure_method(
    engine, method: Method, plan: MethodPlan, record: MethodResult, progress: Progress | None
) -> MethodResult:
    import torch

    from infercomp.measure import PeakMemory, mean, median

    warmup_time = None
    for i in range(engine.config.warmup_runs):
        # Warm-up: the first call pays one-time costs (allocator growth, kernel selection,
        # compilation); it is timed for the record but kept out of every figure.
        outputs = method.run_call(engine, plan.batches[0])
        if i == 0:
            warmup_time = sum(o.seconds for o in outputs)
    torch.manual_seed(engine.config.seed)  # sampling methods draw the same numbers in any order

    completions: list[CompletionRecord] = []
    seen: dict[int, int] = {}
    call_index = 0
    with PeakMemory(engine.settings.device) as memory:
        for done, batch in enumerate(plan.batches, start=1):
            for output in method.run_call(engine, batch):
                for row in output.rows:
                    completions.append(
                        CompletionRecord(
                            prompt_index=row.prompt_index,
                            completion_index=seen.get(row.prompt_index, 0),
                            text=engine.decode(row.token_ids),
                            prompt_tokens=row.prompt_tokens,
                            new_tokens=len(row.token_ids),
                            finish=row.finish,
                            call_index=call_index,
                            call_time_s=output.seconds,
                            tokens_per_second=len(row.token_ids) / output.seconds,
                        )
                    )
                    seen[row.prompt_index] = seen.get(row.prompt_index, 0) + 1
                call_index += 1
            if progress:
                progress(method.name, done, len(plan.batches))

    call_times: dict[int, float] = {c.call_index: c.call_time_s for c in completions}
    total_time = sum(call_times.values())
    new_tokens = sum(c.new_tokens for c in completions)
    latencies = [c.call_time_s for c in completions]
    summary = Summary(
        calls=len(call_times),
        completions=len(completions),
        new_tokens=new_tokens,
        total_time_s=total_time,
        tokens_per_second=new_tokens / total_time if total_time else 0.0,
        latency_mean_s=mean(latencies),
        latency_median_s=median(latencies),
        peak_memory_gb=memory.peak_bytes / 1e9,
        memory_kind=memory.kind,
        warmup_time_s=warmup_time,
    )
    return record.model_copy(update={"completions": completions, "summary": summary})


def failure_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = f"{type(exc).__name__}: {text[0] if text else ''}"
    if "out of memory" in first.lower() or type(exc).__name__ == "OutOfMemoryError":
        return f"{first} ({OOM_REMEDIES})"
    return first
