"""Collecting one method's raw samples: warm-up, then every planned call of every repeat, timed
by the engine, with peak memory and energy around each repeat.

`MethodRun` holds what was observed (times, tokens, completions, cache bytes, per-call shapes);
`figures.py` derives every reported figure from it. A method that raises is marked failed
(`error`) and the run goes on; an interrupt still stops the run.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass, field

from infercomp.errors import failure_reason
from infercomp.methods.base import Method
from infercomp.plan import MethodPlan
from infercomp.process import interrupt_signal
from infercomp.results import CompletionRecord

# Called with (method name, calls done, calls planned) as a run progresses.
Progress = Callable[[str, int, int], None]


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
    energy_window_s: float = 0.0  # the wall time the joules were counted over
    energy_replayed: bool = False  # a timed call was replayed from a checkpoint, not run
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
            if interrupt_signal():
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
                if self.call_hook is None:
                    outputs = run()
                else:  # on resume the hook may replay a saved call instead of running it
                    ran = []

                    def run_and_note(run=run, ran=ran):
                        ran.append(True)
                        return run()

                    outputs = self.call_hook(repeat, done - 1, run_and_note)
                    self.energy_replayed = self.energy_replayed or not ran
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
            self.energy_window_s += energy.seconds
        self.energy_unavailable = energy.unavailable

    @property
    def kv_kind(self) -> str | None:
        """The fast engine's KV-cache kind (int8 / fp8 / offloaded), None for the model dtype."""
        return getattr(self.engine, "kv_kind", None)

    def models_used(self) -> list:
        """The models this method's calls ran: the assistant only where it really drafted (not
        for beam_search_speculative, nor with prompt-lookup drafts, nor after a fallback)."""
        engine = self.engine
        uses_assistant = self.method.uses_assistant(engine) and engine.assistant is not None
        return [engine.main] + ([engine.assistant] if uses_assistant else [])

    def _call_shape(self, output):
        """What the roofline needs of one call: rows, padded prompt, positions, time per pass."""
        from infercomp.measure.memory import kv_bytes_per_token
        from infercomp.measure.roofline import CallShape

        rows = len(output.rows)
        prompt = max(r.prompt_tokens for r in output.rows)
        new = output.context_tokens - prompt
        slots = output.attended_slots
        static = self.engine.settings.cache_implementation == "static"
        if slots is None and static and not output.reads_valid_keys and output.kv_cache_bytes:
            per_slot = sum(kv_bytes_per_token(m, self.kv_kind) for m in self.models_used()) * rows
            slots = output.kv_cache_bytes // per_slot
        st = output.speculative
        if st is not None:
            per_pass = st.verify_time_s / st.verify_steps if st.verify_steps else None
            k = sum(st.draft_lengths) / len(st.draft_lengths) if st.draft_lengths else 0.0
            return CallShape(rows, prompt, new, st.verify_steps, per_pass, slots, k + 1)
        return CallShape(rows, prompt, new, max(new - 1, 0), output.inter_token_latency_s, slots)
