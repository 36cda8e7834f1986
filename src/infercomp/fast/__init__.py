"""infercomp's fast decode engine (config `engine: "fast"`).

The reference engine runs stock `generate()` and a host-driven draft-and-verify loop: on a GPU
its step time is Python and kernel-launch overhead. This engine runs the same methods near the
memory-bandwidth limit:
  model.py        a lean Llama/Qwen forward pass over the loaded weights (fused projections)
  gemv.py         single-row matrix-vector products with norm, activation and residual fused (Triton)
  products.py     the products of several rows (o and down in float32 parts at 2-64 rows)
  rows_kernel.py  infercomp's Triton products of 2-64 rows on CUDA (cuBLAS for longer blocks)
  kvcache.py      the static KV cache: model dtype, or int8 / fp8 codes with their scales
  offload.py      the offloaded KV cache: host memory, streamed through two device layers
  runtime.py      the compiled layer function, CUDA-graph capture, the forward pass
  sampling.py     greedy / temperature / top-k / top-p choice on the device
  decode.py       prefill (length buckets) and the plain decode loop
  beam.py         beam search (transformers' algorithm) on the device
  speculative.py  draft, verify and acceptance as tensor operations
  options.py      the generation settings it runs (and the refusal of others)
  clock.py        device-timeline or host marks for call, first-token and round times
  engine.py       the Engine interface the methods call
"""

from __future__ import annotations

from infercomp.fast.kvcache import FAST_CACHES


def fast_unavailable_reason(engine) -> str | None:
    """Why the fast engine cannot run what this reference engine loaded, or None."""
    from infercomp.fast.model import UnsupportedModel, check_supported

    settings = engine.settings
    if settings.cache_implementation not in FAST_CACHES:
        return f"cache_implementation {settings.cache_implementation!r} runs on the reference engine only"
    if settings.quantization == "nf4":  # torchao kinds run on both engines; bitsandbytes' does not
        return "quantization 'nf4' (bitsandbytes) runs on the reference engine only"
    if settings.quantization_seconds is not None:  # the fast engine fuses unquantized weights
        return "the reference engine already quantized the weights"
    for model in (engine.main, engine.assistant):
        if model is None:
            continue
        try:
            check_supported(model.config)
        except UnsupportedModel as exc:
            return f"the fast engine does not run {exc}"
    return None


def build_fast_engine(ref):
    """The fast engine over the reference engine's models, or the reference engine itself with a
    note saying why the fast one could not run."""
    from infercomp.models import reference_cache
    from infercomp.quant_apply import apply

    reason = fast_unavailable_reason(ref)
    if reason is not None:
        ref.settings.notes.append(f"engine 'fast' not used: {reason}; ran the reference engine ('transformers')")
        reference_cache(ref.settings)  # the reference engine's quantized cache needs its own package
        apply(ref)  # the reference engine quantizes its modules (its load left that to us)
        return ref
    from infercomp.fast.engine import FastEngine

    fast = FastEngine(ref)
    # Quantize the fused weights (the transformers modules are re-pointed at slices of them).
    apply(fast, [lean for lean in (fast.lean, fast.lean_draft) if lean is not None])
    fast.settings.engine = "fast"
    fast.settings.compile = fast.record()
    if fast.kv_kind == "offloaded":
        fast.settings.notes.append(
            "engine 'fast' offloaded KV cache: every layer in pinned host memory, streamed through two "
            "device layer buffers one layer ahead on a side stream (a step moves the cache both ways)"
        )
    elif fast.kv_kind is not None:
        fast.settings.notes.append(
            f"engine 'fast' quantized KV cache: {fast.kv_kind} keys and values, one float32 scale per token and KV head"
        )
    if fast.settings.cache_implementation == "dynamic":
        fast.settings.notes.append(
            "engine 'fast' keeps its own static per-row KV cache, sized once for the plan's largest call"
        )
    return fast
