"""The KV-cache formula (memory figure, roofline) in the cache's real element bytes: the fast
engine's int8 / fp8 codes with their scales, and the device part of an offloaded cache."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tests.test_speculative_sampling import tiny_qwen3

from infercomp.fast.kvcache import KVCache, bytes_per_token
from infercomp.fast.model import LeanModel
from infercomp.fast.offload import OffloadedKVCache
from infercomp.figures import memory_of
from infercomp.measure import roofline as rl
from infercomp.measure.memory import MemoryPeaks, kv_bytes_per_token, offloaded_device_bytes


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", [None, "int8", "fp8", "offloaded"])
def test_formula_equals_the_allocated_cache(kind, dtype):
    model = tiny_qwen3(0).to(dtype)
    shape = LeanModel(model).shape
    rows, slots = 3, 40
    per_token = kv_bytes_per_token(model, kind)
    assert per_token == bytes_per_token(shape, dtype, kind)  # one formula, two modules
    if kind == "offloaded":
        cache = OffloadedKVCache(shape, rows, slots, dtype, "cpu")
        host = cache.nbytes() - cache.device_nbytes()
        assert host == per_token * rows * slots  # the formula counts the host part
    else:
        cache = KVCache(shape, rows, slots, dtype, "cpu", kind)
        assert cache.nbytes() == per_token * rows * slots
    if kind in ("int8", "fp8"):  # one byte per value plus a 4-byte scale per token and kv head
        hd = shape.head_dim
        assert per_token / kv_bytes_per_token(model) == (hd + 4) / (hd * torch.empty((), dtype=dtype).element_size())


def _run(model, engine, kv_bytes: int, rows: int, context: int):
    return SimpleNamespace(
        engine=engine,
        kv_kind=getattr(engine, "kv_kind", None),  # as MethodRun.kv_kind
        peaks=[MemoryPeaks(cpu_rss_peak_gb=1.0)],
        models_used=lambda: [model],
        max_context=context,
        max_rows=rows,
        kv_unmeasured=False,
        kv_cache_bytes=kv_bytes,
    )


def test_memory_figure_uses_the_cache_kind_and_names_the_offloaded_device_part():
    model = tiny_qwen3(0)
    shape = LeanModel(model).shape
    cpu = SimpleNamespace(device="cpu")
    quant = KVCache(shape, 2, 32, torch.float32, "cpu", "int8")
    fast = SimpleNamespace(settings=cpu, kv_kind="int8", cache=quant, draft_cache=None)
    mem = memory_of(_run(model, fast, quant.nbytes(), rows=2, context=32))
    assert mem.kv_cache_formula_gb == pytest.approx(mem.kv_cache_gb)  # the whole cache is in use
    plain = SimpleNamespace(settings=cpu)  # the reference engine: model dtype
    ratio = (shape.head_dim + 4) / (shape.head_dim * 4)  # int8 codes + scale against float32
    assert mem.kv_cache_formula_gb == pytest.approx(
        memory_of(_run(model, plain, None, 2, 32)).kv_cache_formula_gb * ratio
    )
    assert ratio < 0.5
    off = OffloadedKVCache(shape, 2, 32, torch.float32, "cpu")
    engine = SimpleNamespace(settings=cpu, kv_kind="offloaded", cache=off, draft_cache=None)
    assert offloaded_device_bytes(engine) == off.device_nbytes() > 0
    mem = memory_of(_run(model, engine, off.nbytes(), 2, 32))
    assert f"offloaded: {off.device_nbytes() / 1e9:.3f} GB of it on the device" in mem.kv_cache_source
    assert mem.kv_cache_formula_gb == pytest.approx((off.nbytes() - off.device_nbytes()) / 1e9)
    assert offloaded_device_bytes(fast) is None


def test_roofline_reads_the_quantized_cache_in_its_bytes():
    model = tiny_qwen3(0)
    calls = [rl.CallShape(4, 12, 9, 8, 0.01, static_slots=64)]
    plain = rl.roofline(model, calls, bandwidth_gbs=10.0, speculative=False)
    coded = rl.roofline(model, calls, bandwidth_gbs=10.0, speculative=False, kv_kind="int8")
    ratio = kv_bytes_per_token(model, "int8") / kv_bytes_per_token(model)
    assert coded["kv_per_step_gb"] == pytest.approx(plain["kv_per_step_gb"] * ratio)
    assert ratio < 0.5
