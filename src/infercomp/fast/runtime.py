"""Running a step fast: the compiled layer function, CUDA-graph capture, the static KV cache.

On CUDA, a step is a Python function over tensors that live for the whole run (the cache, the
tokens, the positions, the outputs) and change only in place; it is captured once per shape as a
CUDA graph and replayed, so a decode step costs one launch from the host and never waits for the
device. On CPU the same function runs eagerly: no graphs exist there, and compiling would only
move the cost (CPU tests check correctness, not speed).

The layer function is compiled once per (rows, query length) shape with its weights as
arguments, so one compiled graph serves every layer of a model (a whole-model compile spent
92-115 s on Qwen3-4B; one layer compiles in seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from infercomp.fast.model import CUBLAS_PROJECTIONS, Shape, attention_mask, layer_forward, rms_norm


@dataclass
class CompileRecord:
    """What making the steps fast cost: shown in the results next to the timings it buys."""

    mode: str  # "cuda graphs + torch.compile (per layer)", "cuda graphs (eager kernels)", "eager"
    seconds: float = 0.0  # compiling and capturing, all shapes
    shapes: list[str] = field(default_factory=list)  # one entry per captured step


class Runtime:
    """Compile and capture settings shared by every step of one engine."""

    def __init__(self, device: torch.device, compile_layers: bool):
        self.device = device
        self.cuda = device.type == "cuda"
        self.compile_layers = compile_layers and self.cuda
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
        if self.cuda:
            mode = "cuda graphs + torch.compile (one layer function)" if self.compile_layers else "cuda graphs (eager)"
            if self.compile_layers and not inductor.coordinate_descent_tuning:
                mode += ", no block-size search"
            if self.compile_layers and autotune:
                mode += ", matrix products autotuned"
            if self.compile_layers and CUBLAS_PROJECTIONS:
                mode += f", cuBLAS for {'/'.join(sorted(CUBLAS_PROJECTIONS))}"
        self.record = CompileRecord(mode=mode)
        self.pool = torch.cuda.graph_pool_handle() if self.cuda else None

    def graph(self, name: str, body: Callable[[], None], warmups: int = 2) -> Step:
        """A step that runs `body` (which reads and writes only long-lived tensors). On CUDA it is
        warmed up (compiling what it calls) and captured now; the time goes to the record."""
        start = time.perf_counter()
        step = Step(body, self.pool if self.cuda else None, warmups)
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


class KVCache:
    """One model's keys and values: (layers) x (rows, kv_heads, slots, head_dim), allocated once per
    run for the plan's largest call. A row's tokens sit in slots 0..len-1 at their own positions."""

    def __init__(self, shape: Shape, rows: int, slots: int, dtype, device):
        size = (rows, shape.kv_heads, slots, shape.head_dim)
        self.k = [torch.zeros(size, dtype=dtype, device=device) for _ in range(shape.layers)]
        self.v = [torch.zeros(size, dtype=dtype, device=device) for _ in range(shape.layers)]
        self.rows, self.slots = rows, slots
        self.heads = torch.arange(shape.kv_heads, device=device)[None, None, :]  # (1, 1, kv_heads)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)

    def reorder(self, parents: torch.Tensor) -> None:
        """Beam search: row i continues from row parents[i]. parents (B,), B <= rows."""
        b = parents.shape[0]
        for t in self.k + self.v:
            t[:b].copy_(t.index_select(0, parents))


def forward(
    rt: Runtime,
    model,
    cache: KVCache,
    ids: torch.Tensor,  # (B, q) token ids
    pos: torch.Tensor,  # (B, q) positions = cache slots
    rows: torch.Tensor,  # (B, q) row of each query: arange(B) broadcast
    out_index: torch.Tensor | None = None,  # (B, n) which of the q positions need logits; None: all
    visible: int | None = None,  # slots attention reads (all when None); only outside captured steps
) -> torch.Tensor:
    """The model's logits (B, n, vocab) in float32 for the selected positions of a (B, q) block."""
    shape = model.shape
    cos_t, sin_t = model.rope_tables(cache.slots)
    cos, sin = cos_t[pos][:, :, None, :], sin_t[pos][:, :, None, :]  # (B, q, 1, hd)
    x = torch.nn.functional.embedding(ids, model.embed)  # (B, q, hidden)
    mask = attention_mask(pos, visible or cache.slots, shape.groups)
    for i, w in enumerate(model.layers):
        x = rt.layer(x, w, cache.k[i], cache.v[i], rows, cache.heads, pos, cos, sin, mask, shape)
    if out_index is not None:
        x = x.gather(1, out_index[:, :, None].expand(-1, -1, x.shape[-1]))  # (B, n, hidden)
    x = rms_norm(x, model.norm, shape.eps)
    return torch.nn.functional.linear(x, model.head).float()
