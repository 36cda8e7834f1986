"""Running a step fast: the compiled layer function, CUDA-graph capture, the forward pass over
the static KV cache (fast.kvcache).

On CUDA, a step is a Python function over tensors that live for the whole run (the cache, the
tokens, the positions, the outputs) and change only in place; it is captured once per shape as a
CUDA graph and replayed, so a decode step costs one launch from the host and never waits for the
device. On CPU the same function runs eagerly: no graphs exist there, and compiling would only
move the cost (CPU tests check correctness, not speed).

The layer function is compiled once per (rows, query length) shape with its weights as
arguments, so one compiled graph serves every layer of a model (a whole-model compile spent
92-115 s on Qwen3-4B; one layer compiles in seconds).

INFERCOMP_FAST_EAGER=1 runs CUDA steps eagerly (no compiling, no capture): for searches over many
batch sizes (maxbatch), where every new size would compile and capture its steps again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from infercomp.fast import attend, gemv, products
from infercomp.fast import model as model_module
from infercomp.fast.kvcache import KVCache
from infercomp.fast.model import attention_mask, chains_norms, embed_rows, head_logits, layer_forward, rms_norm

__all__ = ["KVCache", "Runtime", "Step", "forward"]

# A prefill block this long or longer runs in row groups of about PREFILL_TOKENS tokens (forward).
LONG_PREFILL = 512
PREFILL_TOKENS = 8192


@dataclass
class CompileRecord:
    """What making the steps fast cost: shown in the results next to the timings it buys."""

    mode: str  # "cuda graphs + torch.compile (per layer)", "cuda graphs (eager kernels)", "eager"
    seconds: float = 0.0  # compiling and capturing, all shapes
    shapes: list[str] = field(default_factory=list)  # one entry per captured step


def look_up_kernels() -> None:
    """Import the Triton kernels' modules now: the compiler cannot trace an import, and the
    attention, packed and top-p kernels are otherwise looked up on first use, which can be inside
    a compiled layer function."""
    from infercomp.fast import packed, sampling

    attend._launcher("launch")
    attend._launcher("launch_fresh")
    packed.kernels()
    sampling._top_p_kernel()


class Runtime:
    """Compile and capture settings shared by every step of one engine."""

    def __init__(self, device: torch.device, compile_layers: bool):
        self.device = device
        self.cuda = device.type == "cuda"
        self.capture = self.cuda and os.environ.get("INFERCOMP_FAST_EAGER", "0") != "1"
        self.compile_layers = compile_layers and self.capture
        gemv.prepare(device, enabled=self.capture)  # eager CUDA runs keep the plain products
        products.prepare(device)  # before any compile: which products of 2-64 rows are infercomp's
        if self.cuda:
            look_up_kernels()
        if self.compile_layers:
            import torch._dynamo
            import torch._inductor.config as inductor

            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
            if hasattr(torch._dynamo.config, "recompile_limit"):
                torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 256)
            # better block sizes for the fused kernels; a knob to measure what it buys
            inductor.coordinate_descent_tuning = os.environ.get("INFERCOMP_FAST_TUNING", "1") == "1"
            # Measured choice between cuBLAS and Triton templates for every matrix product the
            # compiler keeps (slower to compile; a knob to measure what it buys)
            autotune = os.environ.get("INFERCOMP_FAST_AUTOTUNE", "0") == "1"
            options = {"max_autotune": True} if autotune else None
            self.layer = torch.compile(layer_forward, dynamic=False, fullgraph=True, options=options)
        else:
            self.layer = layer_forward
        mode = "eager"
        if self.cuda and not self.capture:
            mode = "eager (CUDA; capture off: INFERCOMP_FAST_EAGER=1)"
        elif self.cuda:
            mode = "cuda graphs + torch.compile (one layer function)" if self.compile_layers else "cuda graphs (eager)"
            if self.compile_layers and not inductor.coordinate_descent_tuning:
                mode += ", no block-size search"
            if self.compile_layers and autotune:
                mode += ", matrix products autotuned"
            if gemv.READY:
                mode += ", one-row products by infercomp's Triton kernels (plain weights and its int8/int4 formats)"
            if attend.BLOCKS:  # read here: INFERCOMP_FAST_BLOCK_ATTENTION=0 turns it off
                mode += ", blocks of a few queries a row (verify passes, short prefills) by the attention kernel"
            if self.compile_layers and products.CUBLAS_PROJECTIONS:
                mode += f", cuBLAS for {'/'.join(sorted(products.CUBLAS_PROJECTIONS))}"
            if self.compile_layers and products.PARTIALS:  # read here: a benchmark variant may set it
                mode += ", products in float32 parts " + ",".join(f"{k}:{v}" for k, v in products.PARTIALS.items())
            if self.compile_layers and model_module.NORM_CHAIN:  # read here: a benchmark variant may set it
                limit = model_module.NORM_CHAIN
                mode += f", each layer's last residual add and the next norm in one kernel (at most {limit} rows)"
            if self.compile_layers and products.ROWS_READY:
                mode += ", 2-64 rows by infercomp's Triton products" + (
                    " (gate|up with its activation)" if products.GATED else ""
                )
        # The small operations around the layers (mask, rotary gathers, final norm, a step's
        # bookkeeping) compiled too: each is otherwise a handful of tiny kernels per step, a gap
        # of a microsecond or two each in the chain. A knob to measure what it buys.
        self.compile_glue = self.compile_layers and os.environ.get("INFERCOMP_FAST_COMPILE_GLUE", "1") != "0"
        if self.compile_glue:
            mode += ", step bookkeeping compiled"
        self._glue: dict[Callable, Callable] = {}
        self.record = CompileRecord(mode=mode)
        self.pool = torch.cuda.graph_pool_handle() if self.capture else None

    def glue(self, fn: Callable, cached: bool = True) -> Callable:
        """fn compiled into few fused kernels where the steps are compiled, else fn. cached: one
        compiled wrapper per module-level function (a closure made per step is compiled as given)."""
        if not self.compile_glue:
            return fn
        if not cached:
            return torch.compile(fn, dynamic=False, fullgraph=True)
        if fn not in self._glue:
            self._glue[fn] = torch.compile(fn, dynamic=False, fullgraph=True)
        return self._glue[fn]

    def graph(self, name: str, body: Callable[[], None], warmups: int = 2) -> Step:
        """A step that runs `body` (which reads and writes only long-lived tensors). On CUDA it is
        warmed up (compiling what it calls) and captured now; the time goes to the record."""
        start = time.perf_counter()
        step = Step(body, self.pool, warmups)
        if self.cuda:
            torch.cuda.synchronize(self.device)
        self.record.seconds += time.perf_counter() - start
        self.record.shapes.append(name)
        return step


class Step:
    def __init__(self, body: Callable[[], None], pool, warmups: int):
        self.body = body
        self.graph = None
        if pool is None:
            return
        # Warm-up runs on a side stream, as capture requires (cuBLAS handles, compiled kernels).
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(warmups):
                body()
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            body()

    def __call__(self) -> None:
        if self.graph is None:
            self.body()
        else:
            self.graph.replay()


@torch.no_grad()  # inference only; the cache's layer views are written in place (fast.kvcache)
def forward(
    rt: Runtime,
    model,
    cache: KVCache,
    ids: torch.Tensor,  # (B, q) token ids
    pos: torch.Tensor,  # (B, q) positions = cache slots
    rows: torch.Tensor,  # (B, q) row of each query: arange(B) broadcast
    out_index: torch.Tensor | None = None,  # (B, n) which of the q positions need logits; None: all
    visible: int | None = None,  # slots attention reads (all when None); only outside captured steps
    prefill: bool = False,  # pos is 0..q-1 in every row (a prompt read from slot 0)
    float32: bool = True,  # False: a plain head's logits in the model dtype (see head_logits)
) -> torch.Tensor:
    """The model's logits (B, n, vocab), float32 unless told otherwise, for the selected positions
    of a (B, q) block.

    A long prefill (q >= LONG_PREFILL) runs in groups of rows of about PREFILL_TOKENS tokens,
    attending to its own fresh keys (see model.attention): its working memory then stays that of
    one group, whatever the batch, and the largest batch is set by the KV cache, not by the prompt."""
    b, q = ids.shape
    if prefill and q >= LONG_PREFILL:
        step = max(1, PREFILL_TOKENS // q)
        parts = []
        for r in range(0, b, step):
            part = _layers(
                rt, model, cache, ids[r : r + step], pos[r : r + step], rows[r : r + step], None, slice(r, r + step)
            )
            parts.append(part if out_index is None else _pick(part, out_index[r : r + step]))
        x = torch.cat(parts)  # (B, n, hidden)
    else:
        mask = rt.glue(attention_mask)(pos, visible or cache.slots, model.shape.groups)
        x = _layers(rt, model, cache, ids, pos, rows, mask, slice(0, b) if prefill else None)
        if out_index is not None:
            x = _pick(x, out_index)
    return head_logits(model.head, x, rt.compile_layers, float32)


def _layers(rt: Runtime, model, cache: KVCache, ids, pos, rows, mask, written: slice | None) -> torch.Tensor:
    """Embedding and every layer (writing the cache): the final norm's output (B, q, hidden).
    written: the cache rows a prefill writes without reading others (None: a step over rows
    already there).

    Where the norms are operations of their own (not fast.gemv's one-row kernels), each layer
    also computes the norm after it, the next layer's input norm or the model's final one, so
    that the compiler makes it one kernel with the residual add that ends the layer: one kernel
    fewer a layer (up to model.NORM_CHAIN rows: measured to pay at 4 rows, to lose at 32)."""
    cos, sin = rt.glue(rope_at)(pos, *model.rope_tables(cache.slots))
    x = embed_rows(model.embed, ids)  # (B, q, hidden)
    eps, layers = model.shape.eps, model.layers
    chain = chains_norms(x, layers)
    normed = rt.glue(rms_norm)(x, layers[0].norm_in, eps) if chain else None
    cache.begin(written)
    for i, w in enumerate(layers):
        cache.before(i)
        args = (x, w, cache.layer(i), rows, cache.heads, pos, cos, sin, mask, model.shape)
        if chain:
            after = layers[i + 1].norm_in if i + 1 < len(layers) else model.norm
            x, normed = rt.layer(*args, normed, after)
        else:
            x = rt.layer(*args)
        cache.after(i)
    cache.end()
    return normed if chain else rt.glue(rms_norm)(x, model.norm, eps)


def rope_at(pos: torch.Tensor, cos_t: torch.Tensor, sin_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotary tables (slots, hd) at positions pos (B, q): cos, sin (B, q, 1, hd)."""
    return cos_t[pos][:, :, None, :], sin_t[pos][:, :, None, :]


def _pick(x: torch.Tensor, out_index: torch.Tensor) -> torch.Tensor:
    """x (B, q, hidden) at out_index (B, n): (B, n, hidden)."""
    return x.gather(1, out_index[:, :, None].expand(-1, -1, x.shape[-1]))
