"""The Triton kernels compiled ahead of time for Hopper (sm_90) with Triton's own ptxas, no GPU
needed: every block choice the launchers make must compile and fit an H100's 227 KB of shared
memory per program. (128 attention slots a step in float32 at hd 128 would need 278 KB, which is
why float32 takes 64: fast/attend_kernel.py, slots_per_step.)

Skipped where Triton is not installed (CPU builds of torch; to run: `pip install triton==3.6.0`),
and in a process whose kernels were already imported for Triton's interpreter (run this file alone)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("skipped: Triton not installed (CUDA builds of torch bring it)", allow_module_level=True)

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, compile  # noqa: E402
from triton.runtime import JITFunction  # noqa: E402

from infercomp.fast import attend_kernel, gemv_kernel, rows_kernel, top_p_kernel  # noqa: E402

if not isinstance(gemv_kernel.gemv_body, JITFunction):
    pytest.skip(
        "skipped: this process interprets Triton (an interpreter test module ran first)", allow_module_level=True
    )

HOPPER = GPUTarget("cuda", 90, 32)
SHARED_LIMIT = 227 * 1024  # bytes of shared memory one program may use on an H100
NAMES = {torch.bfloat16: "bf16", torch.float32: "fp32"}

pytestmark = pytest.mark.slow


def hopper(fn, signature: dict, constants: dict, warps: int = 4, stages: int = 3, divisible=()):
    """fn compiled for sm_90: its metadata (shared memory in bytes); see build."""
    return build(fn, signature, constants, warps, stages, divisible).metadata


def build(fn, signature: dict, constants: dict, warps: int = 4, stages: int = 3, divisible=()):
    """fn compiled for sm_90 (.metadata, .asm["ptx"]). As a launch would compile it:
    every pointer 16-byte aligned and the integers named in `divisible` multiples of 16 (Triton
    specializes on both, and only then pipelines the loads into shared memory: without them a
    64 x 128 block at 5 stages reports 24 KB where the GPU needs 120)."""
    aligned = [name for name, kind in signature.items() if kind.startswith("*")] + list(divisible)
    attrs = {(fn.arg_names.index(name),): [["tt.divisibility", 16]] for name in aligned}
    try:
        kernel = compile(
            ASTSource(fn, signature, constants, attrs),
            target=HOPPER,
            options={"num_warps": warps, "num_stages": stages},
        )
    except RuntimeError as exc:  # no ptxas for sm_90 in this Triton build
        if "ptxas" in str(exc).lower():
            pytest.skip(f"skipped: {exc}")
        raise
    return kernel


def fresh_signature(t: str, constants: dict) -> dict:
    """fresh_kernel's argument types for element type t ("bf16", "fp32"); constants as constexpr."""
    signature = {name: f"*{t}" for name in ("qkv_ptr", "cos_ptr", "sin_ptr", "qn_ptr", "kn_ptr", "k_ptr", "v_ptr")}
    signature.update(pos_ptr="*i64", out_ptr=f"*{t}", stride_row="i32", stride_head="i32", stride_slot="i32",
                     heads="i32", kv_heads="i32", scale="fp32", eps="fp32", ask_slots="i32")  # fmt: skip
    return {**signature, **{name: "constexpr" for name in constants}}


def plain_signature(t: str, constants: dict) -> dict:
    """attend_kernel's argument types for element type t; constants as constexpr."""
    signature = dict(q_ptr=f"*{t}", k_ptr=f"*{t}", v_ptr=f"*{t}", pos_ptr="*i64", out_ptr=f"*{t}", stride_row="i32",
                     stride_head="i32", stride_slot="i32", heads="i32", scale="fp32")  # fmt: skip
    return {**signature, **{name: "constexpr" for name in constants}}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("hd", [64, 128, 256])
def test_both_attention_kernels_fit_at_the_launchers_slots_per_step(dtype, hd):
    t = NAMES[dtype]
    slots = attend_kernel.slots_per_step(torch.empty(0, dtype=dtype), hd)
    constants = dict(GROUPS=4, GP=16, HD=hd, BLOCK_S=slots, F32=dtype == torch.float32, PDL=True)
    fresh = {**constants, "NORM": True}
    meta = hopper(attend_kernel.fresh_kernel, fresh_signature(t, fresh), fresh, warps=attend_kernel.WARPS)
    assert meta.shared <= SHARED_LIMIT, (slots, meta.shared)
    constants["QUERIES"] = 1
    meta = hopper(attend_kernel.attend_kernel, plain_signature(t, constants), constants, warps=attend_kernel.WARPS)
    assert meta.shared <= SHARED_LIMIT, (slots, meta.shared)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("queries", [5, 16])
def test_blocks_of_queries_fit_at_the_launchers_slots_per_step(dtype, queries):
    """The attention kernel over a block of queries a row (fast.attend.BLOCKS: a verify pass of
    k + 1 = 5; 16, the most a tile of MAX_BLOCK_ROWS takes at 4 query heads a kv head), hd 128."""
    t = NAMES[dtype]
    slots = attend_kernel.slots_per_step(torch.empty(0, dtype=dtype), 128)
    gp = max(16, triton.next_power_of_2(4 * queries))
    constants = dict(GROUPS=4, GP=gp, HD=128, BLOCK_S=slots, F32=dtype == torch.float32, PDL=True, QUERIES=queries)
    meta = hopper(attend_kernel.attend_kernel, plain_signature(t, constants), constants, warps=attend_kernel.WARPS)
    assert meta.shared <= SHARED_LIMIT, (slots, meta.shared)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_fused_attention_fits_where_programs_outnumber_the_sms(dtype):
    """The many-programs setting (MANY_PROGRAMS_SLOTS a step, MANY_PROGRAMS_WARPS) at hd 128."""
    t = NAMES[dtype]
    many = torch.empty(0, dtype=dtype)
    slots = max(16, attend_kernel.MANY_PROGRAMS_SLOTS * 2 // many.element_size())
    constants = dict(GROUPS=4, GP=16, HD=128, BLOCK_S=slots, F32=dtype == torch.float32, PDL=True, NORM=True)
    meta = hopper(attend_kernel.fresh_kernel, fresh_signature(t, constants), constants,
                  warps=attend_kernel.MANY_PROGRAMS_WARPS)  # fmt: skip
    assert meta.shared <= SHARED_LIMIT, (slots, meta.shared)


def test_the_shared_memory_check_can_fail():
    """The check above catches a block that does not fit: 128 float32 slots at hd 128."""
    constants = dict(GROUPS=4, GP=16, HD=128, BLOCK_S=128, NORM=True, F32=True, PDL=True)
    signature = fresh_signature("fp32", constants)
    signature.update({name: "constexpr" for name in constants})
    assert hopper(attend_kernel.fresh_kernel, signature, constants).shared > SHARED_LIMIT


@pytest.mark.parametrize("n", [128, 4095, 4096, 151936])
def test_the_candidates_kept_for_every_shape_are_safe_to_launch(n):
    """prune_plain never leaves a shape without candidates, takes rows of <= 2,048 columns whole,
    streams longer ones in 256/512-column steps, and offers column splits only where launch()
    allocates their partial sums and counts (fewer than SPLIT_ROWS rows)."""
    for k in (100, 128, 200, 256, 300, 384, 512, 576, 1000, 1024, 1536, 2048, 2049, 3000, 9728):
        kept = gemv_kernel.prune_plain(gemv_kernel.configs, {"N": n, "K": k})
        assert kept, (n, k)
        if n >= gemv_kernel.SPLIT_ROWS:
            assert all(c.kwargs["SPLIT"] == 1 for c in kept), (n, k)
        if k > gemv_kernel.WHOLE_ROW:
            assert all(c.kwargs["BLOCK_K"] <= 512 for c in kept), (n, k)
        elif k > 128:
            assert all(c.kwargs["BLOCK_K"] == triton.next_power_of_2(k) and c.kwargs["SPLIT"] == 1 for c in kept)


@pytest.mark.parametrize("k", [1024, 2048])
def test_whole_row_tiles_of_the_one_row_product_compile(k):
    """The whole-row candidates the autotuner keeps for rows of <= 2,048 columns."""
    signature = dict(x_ptr="*bf16", norm_ptr="*bf16", w_ptr="*bf16", res_ptr="*bf16", y_ptr="*bf16",
                     part_ptr="*fp32", count_ptr="*i32", N="i32", K="i32", eps="fp32")  # fmt: skip
    kept = gemv_kernel.prune_plain(gemv_kernel.configs, {"N": 4096, "K": k})
    assert kept and all(c.kwargs["BLOCK_K"] == k for c in kept)
    for c in kept:
        constants = dict(PROLOGUE=1, RESIDUAL=False, PDL=True, **c.kwargs)
        sig = {**signature, **{name: "constexpr" for name in constants}}
        meta = hopper(gemv_kernel.gemv_body, sig, constants, warps=c.num_warps, stages=c.num_stages)
        assert meta.shared <= SHARED_LIMIT


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("pass_", [0, 1, 2, -1])
def test_the_top_p_passes_compile(pass_, bits):
    """Every kind of pass (no threshold yet, one digit summed, one stored and one summed, the
    last narrower pass) and the mask kernel, at Qwen3's vocabulary of 38 chunks, for digits of 4
    bits (fewer rows' default) and 2 (the default from MANY_ROWS rows)."""
    plan = top_p_kernel.passes(bits)
    pass_ %= len(plan)
    common = dict(CHUNK=top_p_kernel.CHUNK, CHUNKS_P2=64, BLOCK=top_p_kernel.BLOCK, NPASS=len(plan), CANDS=1 << bits)
    pointers = dict(probs_ptr="*fp32", part_ptr="*fp32", thr_ptr="*i32")
    scalars = dict(vocab="i32", chunks="i32", top_p="fp32")
    shift, width = plan[pass_]
    last_shift = plan[pass_ - 1][0] if pass_ else 0
    constants = dict(PASS=pass_, SHIFT=shift, WIDTH=width, LAST_SHIFT=last_shift, **common)
    signature = {**pointers, **scalars, **{name: "constexpr" for name in constants}}
    assert hopper(top_p_kernel.mass_pass, signature, constants, warps=top_p_kernel.WARPS).shared <= SHARED_LIMIT
    common = dict(common, LAST_SHIFT=plan[-1][0])
    signature = {**pointers, "keep_ptr": "*i1", **scalars, **{name: "constexpr" for name in common}}
    assert hopper(top_p_kernel.keep_kernel, signature, common, warps=top_p_kernel.WARPS).shared <= SHARED_LIMIT


@pytest.mark.parametrize("many", [False, True])
def test_the_top_p_draw_compiles(many):
    """The draw pass after the search, at Qwen3's vocabulary of 38 chunks, after the few-rows and
    the many-rows searches."""
    bits = top_p_kernel.BITS_MANY if many else top_p_kernel.BITS
    plan = top_p_kernel.passes(bits)
    common = dict(CHUNK=top_p_kernel.CHUNK, CHUNKS_P2=64, BLOCK=top_p_kernel.BLOCK, NPASS=len(plan))
    common.update(CANDS=1 << bits, LAST_SHIFT=plan[-1][0])
    pointers = dict(probs_ptr="*fp32", noise_ptr="*fp32", part_ptr="*fp32", thr_ptr="*i32")
    outputs = dict(best_ptr="*fp32", index_ptr="*i32")
    scalars = dict(vocab="i32", chunks="i32", top_p="fp32")
    signature = {**pointers, **outputs, **scalars, **{name: "constexpr" for name in common}}
    assert hopper(top_p_kernel.draw_kernel, signature, common, warps=top_p_kernel.WARPS).shared <= SHARED_LIMIT


@pytest.mark.parametrize("block_m", [16, 32, 64])
def test_the_few_row_products_candidates_fit(block_m):
    """Every block choice the few-row products' autotuners time, at each input tile they launch
    with (2-64 rows): compiles for sm_90 and fits a program's shared memory."""
    signature = dict(x_ptr="*bf16", w_ptr="*bf16", N="i32", K="i32", M="i32")
    for fn, configs, extra in [
        (rows_kernel.rows_body, rows_kernel.ROWS_CONFIGS, {"y_ptr": "*fp32", "SPLIT": 4}),
        (rows_kernel.rows_body, rows_kernel.ROWS_CONFIGS, {"y_ptr": "*bf16", "SPLIT": 1}),
        (rows_kernel.gated_body, rows_kernel.GATED_CONFIGS, {"y_ptr": "*bf16"}),
    ]:
        for c in configs:
            constants = dict(BLOCK_M=block_m, **c.kwargs, **{key: v for key, v in extra.items() if key != "y_ptr"})
            sig = {**signature, "y_ptr": extra["y_ptr"], **{name: "constexpr" for name in constants}}
            meta = hopper(fn, sig, constants, warps=c.num_warps, stages=c.num_stages, divisible=("N", "K"))
            assert meta.shared <= SHARED_LIMIT, (fn.__name__, c, meta.shared)


def test_the_few_row_check_can_fail():
    """A block choice the GPU refused (64 x 256 at 5 stages: 245,760 bytes, call-1 of
    docs/measurements/2026-11-28-h100-rows) is refused here too."""
    constants = dict(BLOCK_M=32, BLOCK_N=64, BLOCK_K=256, SPLIT=1)
    signature = dict(x_ptr="*bf16", w_ptr="*bf16", y_ptr="*bf16", N="i32", K="i32", M="i32")
    signature.update({name: "constexpr" for name in constants})
    meta = hopper(rows_kernel.rows_body, signature, constants, stages=5, divisible=("N", "K"))
    assert meta.shared == 245760 > SHARED_LIMIT


def test_the_attention_asks_l2_for_its_cache_before_it_waits_for_q_k_v():
    """What the early start after q|k|v is for: fresh_kernel with PREFETCH asks L2 for the cached
    keys and values (two loops of line prefetches, one line a thread: LINES = 32 x warps, as
    launched) before griddepcontrol.wait, and asks nothing without it; rows_body lets its
    dependents start with TRIGGER and only then."""
    constants = dict(GROUPS=4, GP=16, HD=128, BLOCK_S=32, F32=False, PDL=True, NORM=True, LINES=128)
    for prefetch in (True, False):
        c = {**constants, "PREFETCH": prefetch}
        ptx = build(attend_kernel.fresh_kernel, fresh_signature("bf16", c), c, warps=4).asm["ptx"].splitlines()
        asks = [i for i, line in enumerate(ptx) if "prefetch.global.L2" in line]
        wait = next(i for i, line in enumerate(ptx) if "griddepcontrol.wait" in line)
        assert (len(asks) == 2 and max(asks) < wait) if prefetch else not asks, (prefetch, asks, wait)
    signature = dict(x_ptr="*bf16", w_ptr="*bf16", y_ptr="*bf16", N="i32", K="i32", M="i32")
    for trigger in (True, False):
        c = dict(BLOCK_M=32, BLOCK_N=64, BLOCK_K=128, SPLIT=1, TRIGGER=trigger)
        sig = {**signature, **{name: "constexpr" for name in c}}
        ptx = build(rows_kernel.rows_body, sig, c, stages=4, divisible=("N", "K")).asm["ptx"]
        assert ("griddepcontrol.launch_dependents" in ptx) == trigger
