"""The fast engine: the reference engine's loaded models, run through infercomp's own lean forward
pass, a static per-row KV cache and captured steps (see `infercomp.fast`).

It answers `generate` (plain, sampled, beams) like the reference engine, with the same rows, and
refuses, with the reason, generation settings it does not implement (`options.py`); the
speculative methods call its `draft_and_verify`, the same algorithm as the reference engine's
`speculative.draft_verify`. The two engines can be compared token for token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from infercomp.calls import CallOutput, Row
from infercomp.engine import Engine
from infercomp.fast import attend
from infercomp.fast.beam import BeamState, beam_bodies
from infercomp.fast.clock import Clock
from infercomp.fast.decode import LaggedFlag, Limits, RowState, bucket, decode_body, prefill_body
from infercomp.fast.kvcache import FAST_CACHES, kind_for, make_cache
from infercomp.fast.model import LeanModel
from infercomp.fast.options import choice_of, unsupported_reason
from infercomp.fast.runtime import KVCache, Runtime
from infercomp.fast.sampling import Choice
from infercomp.fast.speculative import SpecState, lookup_body, model_draft_bodies, verify_body
from infercomp.measure.timing import count_new_tokens
from infercomp.speculative.accounting import SpecStats


@dataclass
class Capacity:
    rows: int
    slots: int
    width: int  # output tokens per row, with room for a round's extra tokens


class FastEngine(Engine):
    """An Engine whose calls run on the fast path. Built from a loaded reference engine."""

    speculative_caches = FAST_CACHES  # speculation drafts and verifies over every cache kind here

    def __init__(self, ref: Engine, compile_layers: bool = True):
        super().__init__(
            ref.config, ref.settings, ref.tokenizer, ref.main, ref.assistant, ref.assistant_error, ref.load_seconds
        )
        device = next(ref.main.parameters()).device
        self.device = device
        self.rt = Runtime(device, compile_layers)
        self.lean = LeanModel(ref.main)
        self.lean_draft = LeanModel(ref.assistant) if ref.assistant is not None else None
        self.clock = Clock(device)
        cfg = self.config
        self.k_max = max(cfg.num_assistant_tokens, 2 * cfg.num_assistant_tokens if cfg.adaptive_draft else 0)
        eos_list = sorted(self.eos_ids)
        self.limits = Limits(
            max_new=torch.tensor(cfg.max_new_tokens, device=device),
            eos=torch.tensor(eos_list or [-1], device=device),
            pad=self.tokenizer.pad_token_id,
            fixed_length=self.settings.fixed_length,
        )
        self.cap = self._capacity()
        self.kv_kind = kind_for(self.settings, cfg)
        self.cache = self._new_cache(self.lean, self.cap.rows)
        self.draft_cache = self._new_cache(self.lean_draft, self.cap.rows) if self.lean_draft is not None else None
        self._steps: dict[tuple, Any] = {}
        self._states: dict[tuple, Any] = {}
        self.compile_s = 0.0

    # -- sizes ------------------------------------------------------------------------------

    def _capacity(self) -> Capacity:
        cfg = self.config
        longest = max(len(self.tokenizer(p)["input_ids"]) for p in cfg.prompts)
        rows = max(cfg.batch_size, max(cfg.completions_per_prompt()))
        need = longest + cfg.max_new_tokens + self.k_max + 2
        slots = max(bucket(longest), need)
        slots = -(-slots // 64) * 64  # whole blocks of 64
        return Capacity(rows=rows, slots=slots, width=cfg.max_new_tokens + self.k_max + 2)

    def ensure_rows(self, rows: int) -> None:
        """Size the caches for exactly `rows` rows (maxbatch: the cache is what a larger batch
        costs, and a smaller trial after a failed larger one must not keep the larger cache).
        Drops the captured steps, which point at the old caches; they are captured again on use."""
        if rows == self.cap.rows:
            return
        self._steps.clear()
        self._states.clear()
        self.cache = self.draft_cache = None
        self.free()
        # No rows until both caches exist: after running out of memory here, the next call of
        # any size allocates again.
        self.cap = Capacity(rows=0, slots=self.cap.slots, width=self.cap.width)
        self.cache = self._new_cache(self.lean, rows)
        if self.lean_draft is not None:
            self.draft_cache = self._new_cache(self.lean_draft, rows)
        self.cap = Capacity(rows=rows, slots=self.cap.slots, width=self.cap.width)

    def _new_cache(self, lean: LeanModel, rows: int) -> KVCache:
        return make_cache(lean.shape, rows, self.cap.slots, lean.dtype, self.device, self.kv_kind)

    def kv_cache_bytes(self) -> int:
        return self.cache.nbytes() + (self.draft_cache.nbytes() if self.draft_cache is not None else 0)

    def record(self) -> dict[str, Any]:
        rec = self.rt.record
        return {"compile_mode": rec.mode, "compile_seconds": round(rec.seconds, 3), "captured_steps": len(rec.shapes)}

    # -- step and state caches ------------------------------------------------------------

    def _step(self, key: tuple, make):
        step = self._steps.get(key)
        if step is None:
            before = self.rt.record.seconds
            step = self._steps[key] = self.rt.graph(" ".join(map(str, key)), make())
            self.compile_s += self.rt.record.seconds - before
            self.settings.compile = self.record()
        return step

    def _state(self, key: tuple, make):
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = make()
        return state

    def _prompts(self, prompt_indices: list[int]) -> list[list[int]]:
        return [self.tokenizer(self.config.prompts[i])["input_ids"] for i in prompt_indices]

    def _load_prompts(self, ids_buf: torch.Tensor, lens: torch.Tensor, prompts: list[list[int]]) -> None:
        """Copy prompts into a (B, P) buffer, left-aligned, padded on the right."""
        host = torch.full(ids_buf.shape, self.limits.pad, dtype=torch.long)
        for r, p in enumerate(prompts):
            host[r, : len(p)] = torch.tensor(p)
        ids_buf.copy_(host)
        lens.copy_(torch.tensor([len(p) for p in prompts]))

    def _check_fits(self, rows: int, prompts: list[list[int]]) -> None:
        longest = max(len(p) for p in prompts)
        if rows > self.cap.rows or longest + self.config.max_new_tokens + self.k_max + 2 > self.cap.slots:
            raise ValueError(
                f"call of {rows} rows and {longest}-token prompts exceeds the fast engine's cache "
                f"({self.cap.rows} rows x {self.cap.slots} slots, sized from the config)"
            )

    # -- plain decoding (greedy or sampled) and beams -------------------------------------

    def unsupported(self, generation_kwargs: dict[str, Any]) -> str | None:
        return unsupported_reason(generation_kwargs)

    @torch.inference_mode()
    def generate(self, prompt_indices: list[int], **kwargs: Any) -> CallOutput:
        refused = unsupported_reason(kwargs)
        if refused is not None:
            raise ValueError(refused)
        beams = int(kwargs.get("num_beams", 1) or 1)
        if beams > 1:
            return self._beam_search(prompt_indices, beams, int(kwargs.get("num_return_sequences", 1) or 1))
        choice = choice_of(kwargs, self.rt.compile_layers)
        prompts = self._prompts(prompt_indices)
        b, width = len(prompts), bucket(max(len(p) for p in prompts))
        self._check_fits(b, prompts)
        self.compile_s = 0.0
        st = self._state(("rows", b), lambda: RowState(b, self.cap.width, self.device))
        ids = self._state(("ids", b, width), lambda: torch.zeros(b, width, dtype=torch.long, device=self.device))
        args = (self.rt, self.lean, self.cache, st)
        self._load_prompts(ids, st.lens, prompts)  # before capture: warm-up runs read them
        prefill = self._step(("prefill", b, width, choice), lambda: prefill_body(*args, ids, choice, self.limits))
        decode = self._step(("decode", b, choice), lambda: decode_body(*args, choice, self.limits))
        start = self.clock.mark()
        prefill()
        first = self.clock.mark()
        watch = None if self.limits.fixed_length else LaggedFlag(lambda: st.done.all())
        steps = 0
        longest = max(len(p) for p in prompts)
        for _ in range(self.config.max_new_tokens - 1):
            if watch is not None and watch.read():
                break
            if not self.rt.cuda:  # eager: attention reads only the slots in use
                st.visible = longest + steps + 1
            decode()
            steps += 1
        end = self.clock.mark()
        tokens = st.tokens()  # waits for the device
        return self._output(prompt_indices, prompts, tokens, start, first, end)

    def _beam_search(self, prompt_indices: list[int], beams: int, returned: int) -> CallOutput:
        prompts = self._prompts(prompt_indices)
        rows_n, width = len(prompts) * beams, bucket(max(len(p) for p in prompts))
        self._check_fits(rows_n, prompts)
        self.compile_s = 0.0
        n_eos = len(_eos_list(self.main.generation_config.eos_token_id))
        keep = max(2, 1 + n_eos) * beams
        st = self._state(("rows", rows_n), lambda: RowState(rows_n, self.cap.width, self.device))
        ids = self._state(
            ("ids", rows_n, width), lambda: torch.zeros(rows_n, width, dtype=torch.long, device=self.device)
        )
        bs = self._state(
            ("beams", len(prompts), beams),
            lambda: BeamState(len(prompts), beams, keep, self.config.max_new_tokens, self.device),
        )
        logits = self._state(("logits", rows_n), lambda: torch.zeros(rows_n, self.lean.shape.vocab, device=self.device))
        penalty = float(getattr(self.main.generation_config, "length_penalty", 1.0) or 1.0)
        update, advance = beam_bodies(
            self.rt, self.lean, self.cache, st, bs, logits, self.limits.eos, self.limits.fixed_length, penalty
        )
        rows_idx = st.row_ids[:, None].expand(rows_n, width)
        pos = torch.arange(width, device=self.device)[None, :].expand(rows_n, width)

        def prefill_body_() -> None:
            from infercomp.fast.runtime import forward

            last = (st.lens - 1)[:, None]
            logits.copy_(forward(self.rt, self.lean, self.cache, ids, pos, rows_idx, last, prefill=True)[:, 0])

        self._load_prompts(ids, st.lens, [p for p in prompts for _ in range(beams)])
        bs.reset(self.limits.pad)
        prefill = self._step(("beam-prefill", rows_n, width), lambda: prefill_body_)
        upd = self._step(("beam-update", len(prompts), beams), lambda: update)
        adv = self._step(("beam-advance", rows_n), lambda: advance)
        bs.reset(self.limits.pad)  # capture's warm-up runs moved it
        start = self.clock.mark()
        prefill()
        first = None
        watch = LaggedFlag(lambda: ~bs.active)
        for t in range(self.config.max_new_tokens):
            upd()
            if first is None:
                first = self.clock.mark()
            if t == self.config.max_new_tokens - 1 or watch.read():
                break
            if not self.rt.cuda:
                st.visible = max(len(p) for p in prompts) + t + 1
            adv()
        end = self.clock.mark()
        results = bs.results(returned)
        tokens = [ids_ for ids_, _ in results]
        scores = [score for _, score in results]
        index = [p for p in prompt_indices for _ in range(returned)]
        out = self._output(index, [p for p in prompts for _ in range(returned)], tokens, start, first, end, 0)
        for row, score in zip(out.rows, scores, strict=True):
            row.score = score
        return out

    # -- speculative ------------------------------------------------------------------------

    @torch.inference_mode()
    def draft_and_verify(self, prompt_indices: list[int], **kwargs: Any) -> CallOutput:
        cfg = self.config
        choice = choice_of(kwargs, self.rt.compile_layers)
        prompts = self._prompts(prompt_indices)
        b, width = len(prompts), bucket(max(len(p) for p in prompts))
        self._check_fits(b, prompts)
        self.compile_s = 0.0
        lookup = cfg.draft_source == "prompt_lookup"
        sampled_q = choice.do_sample and not lookup
        vocab = self.lean.shape.vocab
        st = self._state(
            ("spec", b, sampled_q),
            lambda: SpecState(b, self.cap.width, self.cap.slots, self.k_max, vocab, sampled_q, self.device),
        )
        ids = self._state(("ids", b, width), lambda: torch.zeros(b, width, dtype=torch.long, device=self.device))
        main_args = (self.rt, self.lean, self.cache, st)
        self._load_prompts(ids, st.lens, prompts)  # before capture: warm-up runs read them
        prefill = self._step(
            ("spec-prefill", b, width, choice, sampled_q), lambda: prefill_body(*main_args, ids, choice, self.limits)
        )
        verify = self._step(("spec-verify", b, choice, sampled_q), lambda: verify_body(*main_args, choice, self.limits))
        draft_prefill = None
        if not lookup:
            d_args = (self.rt, self.lean_draft, self.draft_cache, st)
            draft_prefill = self._step(("draft-prefill", b, width), lambda: _prefill_only(*d_args, ids))
        self._draft_step(b, cfg.num_assistant_tokens, choice, sampled_q, st, lookup)  # captured before timing
        st.seq.zero_()
        st.seq[:, :width].copy_(ids)
        st.reset_counters()
        k = cfg.num_assistant_tokens
        stats = SpecStats(histogram=[0] * (self.k_max + 1))
        marks: list[tuple] = []
        start = self.clock.mark()
        prefill()
        if draft_prefill is not None:
            draft_prefill()
        st.seq.scatter_(1, st.lens[:, None], st.tok[:, None])  # the pending token after the prompt
        first = self.clock.mark()
        watch = LaggedFlag(lambda: st.done.all())
        rounds = 0
        cost_ratio = None
        while rounds < cfg.max_new_tokens and not watch.read():
            draft = self._draft_step(b, k, choice, sampled_q, st, lookup)
            t0 = self.clock.mark()
            draft()
            t1 = self.clock.mark()
            verify()
            t2 = self.clock.mark()
            marks.append((t0, t1, t2))
            stats.draft_lengths.append(k)
            rounds += 1
            if cfg.adaptive_draft and rounds % 4 == 0:
                k, cost_ratio = self._adapt(st, marks, k, cost_ratio)
        end = self.clock.mark()
        tokens = st.tokens()
        out = self._output(prompt_indices, prompts, tokens, start, first, end, self.k_max + 1)  # verify_body's block
        self._fill_stats(stats, st, marks, lookup)
        out.speculative = stats
        out.kv_cache_bytes = self.kv_cache_bytes() if not lookup else self.cache.nbytes()
        return out

    def _draft_step(self, b: int, k: int, choice: Choice, sampled_q: bool, st: SpecState, lookup: bool):
        if lookup:
            return self._step(("lookup", b, k), lambda: lookup_body(st, self.config.prompt_lookup_max_ngram, k))

        def make():
            first, next_ = model_draft_bodies(self.rt, self.lean_draft, self.draft_cache, st, choice, self.limits)

            def body() -> None:
                first()
                for _ in range(k - 1):
                    next_()

            return body

        return self._step(("draft", b, k, choice, sampled_q), make)

    def _adapt(self, st: SpecState, marks, k: int, cost_ratio):
        """Adaptive draft length from the measured acceptance and draft / verify costs."""
        from infercomp.speculative.accounting import best_draft_length

        drafted, accepted = int(st.drafted), int(st.accepted)  # a read every few rounds
        if cost_ratio is None:
            t0, t1, t2 = marks[-1]
            cost_ratio = self.clock.seconds(t0, t1) / k / max(self.clock.seconds(t1, t2), 1e-9)
        alpha = min(accepted / drafted, 0.99) if drafted else 0.7
        return best_draft_length(alpha, cost_ratio, self.k_max), cost_ratio

    def _fill_stats(self, stats: SpecStats, st: SpecState, marks, lookup: bool) -> None:
        stats.rounds = len(marks)
        stats.drafted = int(st.drafted)
        stats.accepted = int(st.accepted)
        stats.histogram = st.histogram.cpu().tolist()
        stats.draft_time_s = sum(self.clock.seconds(a, b) for a, b, _ in marks)
        stats.verify_time_s = sum(self.clock.seconds(b, c) for _, b, c in marks)
        stats.verify_steps = len(marks)
        stats.draft_steps = 0 if lookup else sum(stats.draft_lengths)

    # -- results --------------------------------------------------------------------------

    def _output(self, prompt_indices, prompts, tokens, start, first, end, queries=1) -> CallOutput:
        if self.clock.cuda:
            torch.cuda.synchronize(self.device)
        rows = []
        for p, prompt, ids in zip(prompt_indices, prompts, tokens, strict=True):
            n, finish = count_new_tokens(ids, self.eos_ids, self.settings.fixed_length)
            rows.append(Row(p, len(prompt), ids[:n], finish))
        longest = max(len(r.token_ids) for r in rows)
        seconds = self.clock.seconds(start, end)
        ttft = self.clock.seconds(start, first)
        itl = (seconds - ttft) / (longest - 1) if longest > 1 else None
        return CallOutput(
            seconds=seconds,
            rows=rows,
            ttft_s=ttft,
            inter_token_latency_s=itl,
            context_tokens=max(len(p) for p in prompts) + longest,
            compile_s=self.compile_s,
            kv_cache_bytes=self.cache.nbytes(),
            **self._attention_reads(queries),
        )

    def _attention_reads(self, queries: int) -> dict:
        """The roofline's KV bytes of a captured step: each row's valid slots where fast.attend's
        kernel serves it (`queries` a row, a cache on the device); else every slot: the unfused
        path (quantized caches; verify passes without fast.attend.BLOCKS) masks the whole cache,
        a beam step (queries 0) reorders every slot, an offloaded cache moves every slot to the
        device and back. On CPU, nothing: the roofline takes the context (eager steps read the
        slots in use), or the whole cache where the run asked for a static one."""
        valid = self.rt.cuda and queries > 0 and self.cache.kind != "offloaded"
        valid = valid and attend.serves_steps(self.cache, self.lean.shape.heads, self.lean.dtype, queries)
        return {"attended_slots": self.cap.slots if self.rt.cuda and not valid else None, "reads_valid_keys": valid}


def _prefill_only(rt, model, cache, st, ids):
    """The draft model reads the prompts (its logits are not needed)."""
    from infercomp.fast.runtime import forward

    rows_n, width = ids.shape
    pos = torch.arange(width, device=ids.device)[None, :].expand(rows_n, width)
    rows = st.row_ids[:, None].expand(rows_n, width)

    def body() -> None:
        forward(rt, model, cache, ids, pos, rows, (st.lens - 1)[:, None], prefill=True)

    return body


def _eos_list(eos) -> list[int]:
    if eos is None:
        return []
    return sorted(set(eos if isinstance(eos, list) else [eos]))
