"""The products of a layer of several rows (fast.products): float32 partial products summed by the
kernel that consumes them must give the plain product's values; on CPU the same function runs on
float32 copies (2-byte values are exact in float32)."""

import pytest
import torch
import torch.nn.functional as F

from infercomp.fast import products
from infercomp.fast.kvcache import KVCache
from infercomp.fast.model import LayerWeights, Shape, attention_mask, layer_forward


def _close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> None:
    """Within the rounding of the output dtype: one unit in the last place of the largest value."""
    ulp = torch.finfo(dtype).eps * want.abs().max().item()
    assert got.dtype == want.dtype and got.shape == want.shape
    assert (got.float() - want.float()).abs().max().item() <= 2 * ulp


@pytest.mark.parametrize("splits", [2, 4, 8])
def test_partial_products_sum_to_the_product(splits):
    torch.manual_seed(0)
    x, w = torch.randn(5, 256, dtype=torch.bfloat16), torch.randn(48, 256, dtype=torch.bfloat16)
    parts = products.partial_products(x, w, splits)
    assert parts.shape == (splits, 5, 48) and parts.dtype == torch.float32
    want = x.float() @ w.float().T
    assert torch.allclose(parts.sum(0), want, rtol=1e-5, atol=1e-4)
    # each part is the product over its own slice of the inner dimension
    k = 256 // splits
    assert torch.allclose(parts[1], x[:, k : 2 * k].float() @ w[:, k : 2 * k].float().T, rtol=1e-5, atol=1e-4)


@pytest.fixture
def taken(monkeypatch):
    """The (rows, in, splits) of every product taken in parts, with CPU tensors allowed to take them
    (their compiled traces record them: the check is whether the compiled code takes the parts)."""
    calls = []
    real = products.partial_products

    def counted(x, weight, splits):
        calls.append((x.shape[0], x.shape[1], splits))
        return real(x, weight, splits)

    monkeypatch.setattr(products, "partial_products", counted)
    monkeypatch.setattr(products, "PARTIALS_DEVICES", frozenset({"cpu"}))
    monkeypatch.setattr(products, "ROWS_READY", False)  # cuBLAS's forms (fast/rows_kernel.py: test_own_kernels_*)
    torch._dynamo.reset()
    return calls


def compiled_project(name: str):
    return torch.compile(lambda x, w: products.project(name, x, w), backend="aot_eager", fullgraph=True, dynamic=False)


def test_compiled_products_of_2_to_64_rows_take_the_parts(taken):
    torch.manual_seed(1)
    w = torch.randn(48, 256, dtype=torch.bfloat16)
    assert products.PARTIALS == {"o": 4, "down": 4} and products.PARTIALS_ROWS == range(2, 65)
    project_o = compiled_project("o")
    for rows in (1, 2, 64, 65):
        x = torch.randn(rows, 256, dtype=torch.bfloat16)
        got = project_o(x, w)
        _close(got, F.linear(x, w), torch.bfloat16)
    assert taken == [(2, 256, 4), (64, 256, 4)]
    # eager (no compiler to fold the sum into the next kernel): the plain product
    x = torch.randn(4, 256, dtype=torch.bfloat16)
    assert torch.equal(products.project("o", x, w), F.linear(x, w)) and len(taken) == 2


def test_other_products_keep_the_plain_product(taken):
    """A name not listed, float32, an inner size the splits do not cut into 8-element blocks, and
    a device not in PARTIALS_DEVICES."""
    torch.manual_seed(2)
    x, w = torch.randn(2, 3, 256, dtype=torch.bfloat16), torch.randn(48, 256, dtype=torch.bfloat16)
    assert torch.equal(compiled_project("gate_up")(x, w), F.linear(x, w))
    assert torch.equal(compiled_project("o")(x.float(), w.float()), F.linear(x.float(), w.float()))
    odd_x, odd_w = torch.randn(2, 3, 264, dtype=torch.bfloat16), torch.randn(48, 264, dtype=torch.bfloat16)
    assert torch.equal(compiled_project("down")(odd_x, odd_w), F.linear(odd_x, odd_w))
    assert taken == []
    products.PARTIALS_DEVICES = frozenset({"cuda"})  # restored by the fixture's monkeypatch
    torch._dynamo.reset()
    assert torch.equal(compiled_project("o")(x, w), F.linear(x, w)) and taken == []


def test_a_layer_in_parts_matches_the_layer_without(monkeypatch, taken):
    """The whole multi-row layer, compiled as one graph, in bf16: the parts change only rounding."""
    torch.manual_seed(3)
    s, hd, hidden, dt = Shape(1, 4, 2, 16, 64, 10, 1e-6, 128), 16, 64, torch.bfloat16
    w = LayerWeights(
        qkv=torch.randn(8 * hd, hidden, dtype=dt) * 0.1,
        qkv_bias=None,
        o=torch.randn(hidden, 4 * hd, dtype=dt) * 0.1,
        gate_up=torch.randn(256, hidden, dtype=dt) * 0.1,
        down=torch.randn(hidden, 128, dtype=dt) * 0.1,
        norm_in=torch.ones(hidden, dtype=dt),
        norm_post=torch.ones(hidden, dtype=dt),
        q_norm=torch.ones(hd, dtype=dt),
        k_norm=torch.ones(hd, dtype=dt),
    )
    b = 4
    x = torch.randn(b, 1, hidden, dtype=dt)
    pos = torch.full((b, 1), 5)
    rows = torch.arange(b)[:, None]
    cos, sin = torch.ones(b, 1, 1, hd, dtype=dt), torch.zeros(b, 1, 1, hd, dtype=dt)
    mask = attention_mask(pos, 64, s.groups)
    caches = [KVCache(s, b, 64, dt, "cpu", None) for _ in range(2)]
    with torch.inference_mode():
        want = layer_forward(x, w, caches[0].layer(0), rows, caches[0].heads, pos, cos, sin, mask, s)
        monkeypatch.setattr(products, "PARTIALS", {"o": 2, "gate_up": 2, "down": 4})
        torch._dynamo.reset()
        compiled = torch.compile(layer_forward, fullgraph=True, dynamic=False, backend="aot_eager")
        got = compiled(x, w, caches[1].layer(0), rows, caches[1].heads, pos, cos, sin, mask, s)
    # bf16 rounding differs where the sums are split: a few units in the last place of the output
    assert (got.float() - want.float()).abs().max().item() <= 8 * torch.finfo(dt).eps * want.abs().max().item()
    assert not torch.equal(got, torch.zeros_like(got))
    assert sorted(taken) == [(4, 64, 2), (4, 64, 2), (4, 128, 4)]  # o and gate|up (64 in), down (128 in)


@pytest.mark.gpu
def test_partial_products_on_the_gpu_match_the_product():
    """At Qwen3-4B's down projection and 32 rows, on CUDA (one batched cuBLAS call with float32
    output): the parts' sum within float32 accumulation error of the float64 product, and the
    rounded sum within one bf16 rounding of cuBLAS's own bf16 product."""
    torch.manual_seed(4)
    x = torch.randn(32, 9728, dtype=torch.bfloat16, device="cuda")
    w = (torch.randn(2560, 9728, device="cuda") * 0.02).to(torch.bfloat16)
    parts = products.partial_products(x, w, 4)
    assert parts.shape == (4, 32, 2560) and parts.dtype == torch.float32
    want = x.double() @ w.double().T
    assert (parts.sum(0).double() - want).abs().max().item() <= 1e-4 * want.abs().max().item()
    _close(parts.sum(0).to(torch.bfloat16), F.linear(x, w), torch.bfloat16)


def test_per_projection_settings_parse_and_warn_about_malformed_entries():
    assert products._per_projection("o:4,down:2") == {"o": 4, "down": 2}
    with pytest.warns(UserWarning) as caught:
        got = products._per_projection("gate_up:2,lm_head:2,qkv:x")
    assert got == {"gate_up": 2}
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "INFERCOMP_FAST_PARTIALS: 'lm_head:2' ignored",
        "INFERCOMP_FAST_PARTIALS: 'qkv:x' ignored",
    ]


class _OwnKernels:
    """fast/rows_kernel.py's launchers in plain PyTorch, recording each launch: whether the
    compiled layer takes infercomp's few-row kernels, with what parts, where Triton is absent."""

    def __init__(self):
        self.launches = []

    def launch(self, x, weight, config):
        self.launches.append(("rows", x.shape[0], config["SPLIT"]))
        return products.partial_products(x, weight, config["SPLIT"]) if config["SPLIT"] > 1 else F.linear(x, weight)

    def gated_launch(self, x, weight):
        self.launches.append(("gated", x.shape[0], 1))
        gate, up = F.linear(x, weight).chunk(2, dim=-1)
        return F.silu(gate) * up


@pytest.fixture
def own(monkeypatch):
    kernels = _OwnKernels()
    monkeypatch.setattr(products, "_rows_kernel", lambda: kernels)
    monkeypatch.setattr(products, "ROWS_READY", True)
    monkeypatch.setattr(products, "PARTIALS_DEVICES", frozenset({"cpu"}))
    torch._dynamo.reset()
    return kernels.launches


def test_own_kernels_take_compiled_products_of_2_to_64_rows(own):
    torch.manual_seed(6)
    w = torch.randn(48, 256, dtype=torch.bfloat16)
    assert products.ROWS and not products.GATED  # the few-row kernels on by default, the fused activation off
    for rows in (1, 2, 64, 65):
        x = torch.randn(rows, 256, dtype=torch.bfloat16)
        _close(compiled_project("o")(x, w), F.linear(x, w), torch.bfloat16)
        _close(compiled_project("qkv")(x, w), F.linear(x, w), torch.bfloat16)
    # o in its four parts (PARTIALS), q|k|v whole; 1 row is the one-row kernels', 65 cuBLAS's
    assert own == [("rows", 2, 4), ("rows", 2, 1), ("rows", 64, 4), ("rows", 64, 1)]
    x = torch.randn(8, 256, dtype=torch.bfloat16)
    assert torch.equal(products.project("qkv", x, w), F.linear(x, w)) and len(own) == 4  # eager: cuBLAS
    torch._dynamo.reset()  # the lambda above was compiled for 8 shapes already
    project_qkv = compiled_project("qkv")
    project_qkv(x.float(), w.float())  # 4-byte values: cuBLAS
    project_qkv(x, w.T.contiguous().T)  # a weight not stored row by row: cuBLAS
    assert len(own) == 4
    bias = torch.randn(48, dtype=torch.bfloat16)
    with_bias = torch.compile(lambda x: products.project("qkv", x, w, bias), backend="aot_eager", fullgraph=True)
    _close(with_bias(x), F.linear(x, w, bias), torch.bfloat16)
    assert len(own) == 4  # a bias keeps cuBLAS


def test_own_kernels_fuse_gate_up_with_its_activation(own, monkeypatch):
    monkeypatch.setattr(products, "GATED", True)
    torch.manual_seed(7)
    w = torch.randn(2 * 24, 256, dtype=torch.bfloat16)
    x = torch.randn(2, 3, 256, dtype=torch.bfloat16)
    gate, up = F.linear(x, w).chunk(2, dim=-1)
    fused = torch.compile(products.gated, backend="aot_eager", fullgraph=True)
    got = fused(x, w)
    assert got.shape == (2, 3, 24) and own == [("gated", 6, 1)]
    _close(got, F.silu(gate) * up, torch.bfloat16)
    monkeypatch.setattr(products, "GATED", False)
    torch._dynamo.reset()
    _close(torch.compile(products.gated, backend="aot_eager", fullgraph=True)(x, w), F.silu(gate) * up, torch.bfloat16)
    assert own == [("gated", 6, 1), ("rows", 6, 1)]  # the product alone, the activation compiled
    monkeypatch.setattr(products, "ROWS_READY", False)
    torch._dynamo.reset()
    torch.compile(products.gated, backend="aot_eager", fullgraph=True)(x, w)
    assert len(own) == 2  # not prepared (INFERCOMP_FAST_ROWS=0, no Triton, not Hopper): cuBLAS


def test_prepare_takes_the_few_row_kernels_only_on_hopper(monkeypatch):
    """On a CUDA device of compute capability 9 with Triton (here a stand-in) and ROWS on; a CPU
    engine's preparation leaves the choice as it was."""
    monkeypatch.setattr(products, "ROWS_READY", False)
    monkeypatch.setattr(products, "_rows_kernel", lambda: _OwnKernels())
    cuda = torch.device("cuda", 0)
    for capability, rows, want in [((9, 0), True, True), ((8, 0), True, False), ((10, 0), True, False),
                                   ((9, 0), False, False)]:  # fmt: skip
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device, c=capability: c)
        monkeypatch.setattr(products, "ROWS", rows)
        assert products.prepare(cuda) is want and products.ROWS_READY is want
    monkeypatch.setattr(products, "ROWS", True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: (9, 0))
    assert products.prepare(cuda) is True
    assert products.prepare(torch.device("cpu")) is True  # left alone
    monkeypatch.setattr(products, "_rows_kernel", lambda: False)  # Triton missing
    assert products.prepare(cuda) is False
