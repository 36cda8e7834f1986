"""Deriving one method's figures from its collected samples (collect.MethodRun): the summary
(medians over repeats, latency, energy), memory, roofline, draft-and-verify accounting and
quality; then the figures that compare methods (speedups, the Pareto front).

Nothing here runs a timed call: quality scoring and the greedy reference run after every
timed call of the method.
"""

from __future__ import annotations

from infercomp.collect import MethodRun
from infercomp.errors import failure_reason
from infercomp.measure.stats import median
from infercomp.methods.base import recorded_generation
from infercomp.results import (
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
)


def method_result(run: MethodRun) -> MethodResult:
    engine = run.engine
    if run.skip:
        return MethodResult(status="skipped", reason=run.skip)
    record = MethodResult(
        status="ok",
        execution=run.method.execution(engine),
        fallback=run.method.fallback_reason(engine),
        speculation_note=run.method.speculation_note(engine),
        generation=recorded_generation(run.method, engine.config, run.plan.batches),
    )
    if run.error:
        return record.model_copy(update={"status": "failed", "reason": run.error})
    for c in run.completions:
        c.call_times_s = [s.call_times[c.call_index] for s in run.samples]
        c.call_time_s = median(c.call_times_s)
        c.tokens_per_second = c.new_tokens / c.call_time_s
    summary = summary_of(run)
    quality = quality_of(run)  # after every timed call: scoring never touches the timings
    return record.model_copy(
        update={
            "completions": run.completions,
            "summary": summary,
            "quality": quality,
            "speculative": accounting_of(run),
        }
    )


def accounting_of(run: MethodRun) -> SpeculativeAccounting | None:
    from infercomp.speculative.accounting import predicted_speedup

    st = run.spec
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
        draft_source=run.engine.config.draft_source,
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


def quality_of(run: MethodRun) -> Quality | None:
    from infercomp.quality import score_method

    config = run.engine.config
    if not config.quality:
        return None
    if config.load_format == "random":
        return Quality(unavailable="not meaningful: the models have random weights")
    engine = run.engine
    try:
        reference = engine.greedy_reference()  # untimed greedy calls, once per engine
        return Quality(**score_method(config, engine.main, engine.tokenizer, run.completions, reference))
    except Exception as exc:  # noqa: BLE001 - a scoring problem must not lose the timings
        return Quality(unavailable=f"scoring failed: {failure_reason(exc)}")


def summary_of(run: MethodRun) -> Summary:
    from infercomp.measure.stats import describe, percentile

    rates = [s.new_tokens / s.total_time_s for s in run.samples]
    latencies = [c.call_time_s for c in run.completions]
    ttfts = [t for s in run.samples for t in s.ttfts]
    itls = [t for s in run.samples for t in s.itls]
    memory = memory_of(run)
    on_gpu = run.engine.settings.device.startswith("cuda")
    tokens = run.samples[0].new_tokens
    return Summary(
        repeats=len(run.samples),
        calls=len(run.samples[0].call_times),
        completions=len(run.completions),
        new_tokens=tokens,
        total_time_s=median([s.total_time_s for s in run.samples]),
        total_time_s_runs=[s.total_time_s for s in run.samples],
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
        roofline=roofline_of(run),
        energy=energy_of(run, tokens * len(run.samples)),
        warmup_time_s=run.warmup_time_s,
        warmup_first_call_s=run.warmup_first_call_s,
        warmup_shapes=[list(shape) for shape in run.warmup_shapes],
        compile_time_s=run.compile_s + run.compile_timed_s if run.engine.settings.engine == "fast" else None,
        compile_in_timed_s=run.compile_timed_s if run.engine.settings.engine == "fast" else None,
    )


def energy_of(run: MethodRun, tokens: int) -> Energy:
    """Joules over the repeats' windows, or why there is no figure: no counter, calls replayed on
    resume (they spend neither time nor energy), or windows too short in all for the counter's
    steps (measure.energy.MIN_WINDOW_S)."""
    from infercomp.measure.energy import MIN_WINDOW_S

    if run.joules is None:
        return Energy(unavailable=run.energy_unavailable)
    if run.energy_replayed:
        return Energy(unavailable="not measured: resumed, and some timed calls were replayed from the checkpoint")
    window = run.energy_window_s
    if window < MIN_WINDOW_S:
        return Energy(
            window_s=window,
            unavailable=f"not measured: the timed repeats took {window:.2f} s in all, under the {MIN_WINDOW_S:g} s "
            "over which NVML's energy counter, which advances in steps, gives a figure (more repeats or tokens)",
        )
    return Energy(
        joules=run.joules, joules_per_token=run.joules / tokens, window_s=window, mean_watts=run.joules / window
    )


def memory_of(run: MethodRun) -> Memory:
    from infercomp.measure.memory import kv_bytes_per_token, offloaded_device_bytes, weight_bytes

    def peak(attr: str) -> float | None:
        values = [getattr(p, attr) for p in run.peaks if getattr(p, attr) is not None]
        return max(values) if values else None

    models = run.models_used()
    weights = sum(weight_bytes(m) for m in models) / 1e9
    # Cross-check: bytes per token x the longest context x the most rows of any call.
    # In the cache's element bytes (int8 / fp8 codes and their scales on the fast engine).
    formula = sum(kv_bytes_per_token(m, run.kv_kind) for m in models) * run.max_context * run.max_rows / 1e9
    kv = None if run.kv_unmeasured or run.kv_cache_bytes is None else run.kv_cache_bytes / 1e9
    source = "measured: cache tensors after the largest call"
    device = offloaded_device_bytes(run.engine)
    if kv is not None and device is not None:
        source += (
            f"; offloaded: {device / 1e9:.3f} GB of it on the device (two layer buffers per model), "
            "the rest in pinned host memory (the formula counts the host part)"
        )
    on_gpu = run.engine.settings.device.startswith("cuda")
    measured = peak("gpu_allocated_peak_gb") if on_gpu else peak("cpu_rss_peak_gb")
    return Memory(
        cpu_rss_peak_gb=peak("cpu_rss_peak_gb"),
        gpu_allocated_peak_gb=peak("gpu_allocated_peak_gb"),
        gpu_reserved_peak_gb=peak("gpu_reserved_peak_gb"),
        nvml_used_peak_gb=peak("nvml_used_peak_gb"),
        weights_gb=weights,
        kv_cache_gb=kv,
        kv_cache_formula_gb=formula,
        kv_cache_source=source
        if kv is not None
        else "not measured: a call returned no inspectable cache; see kv_cache_formula_gb",
        other_gb=None if measured is None else measured - weights - (kv if kv is not None else formula),
    )


def roofline_of(run: MethodRun) -> Roofline:
    """Bytes one forward pass reads (weights, with one embedding row per token; KV at each
    step's context), over its measured time, against the measured copy bandwidth."""
    from infercomp.measure.roofline import roofline

    speculative = run.spec is not None
    return Roofline(**roofline(run.engine.main, run.call_shapes, run.bandwidth_gbs, speculative, run.kv_kind))


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
