"""Memory: measured peaks over a block, the bytes a KV cache's tensors really hold, and the
analytic estimate kept as a cross-check."""

from __future__ import annotations

import threading
from dataclasses import dataclass

GB = 1e9


@dataclass
class MemoryPeaks:
    cpu_rss_peak_gb: float
    gpu_allocated_peak_gb: float | None = None
    gpu_reserved_peak_gb: float | None = None
    nvml_used_peak_gb: float | None = None  # whole device, all processes, as the driver sees it


class PeakMemory:
    """Peaks over a `with` block.

    Always: the process's peak resident set size. On Linux the kernel keeps it (VmHWM, reset by
    writing 5 to /proc/self/clear_refs), so no thread runs inside the timed region: a sampling
    thread waking every few milliseconds slowed CPU decoding by several percent. Elsewhere, and
    on CUDA for NVML, a thread samples every few milliseconds. On CUDA also
    `max_memory_allocated` / `max_memory_reserved` after a reset (what PyTorch's tensors and
    its caching allocator held) and, where nvidia-ml-py is installed, the device's used memory as
    the driver reports it (includes the CUDA context and other processes).
    """

    def __init__(self, device: str, interval_s: float = 0.005):
        self.device = device
        self.interval_s = interval_s
        self.on_gpu = device.startswith("cuda")
        self.rss_peak = 0
        self.nvml_peak: int | None = None
        self._nvml_handle = _nvml_handle(device) if self.on_gpu else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peaks: MemoryPeaks | None = None

    def _sample(self) -> None:
        import psutil

        proc = psutil.Process()
        while True:
            self.rss_peak = max(self.rss_peak, proc.memory_info().rss)
            if self._nvml_handle is not None:
                import pynvml

                used = pynvml.nvmlDeviceGetMemoryInfo(self._nvml_handle).used
                self.nvml_peak = max(self.nvml_peak or 0, used)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> PeakMemory:
        if self.on_gpu:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._kernel_peak = _reset_kernel_rss_peak()
        if not self._kernel_peak or self._nvml_handle is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        peaks = MemoryPeaks(cpu_rss_peak_gb=0.0)
        if self.on_gpu:
            import torch

            torch.cuda.synchronize(self.device)
            peaks.gpu_allocated_peak_gb = torch.cuda.max_memory_allocated(self.device) / GB
            peaks.gpu_reserved_peak_gb = torch.cuda.max_memory_reserved(self.device) / GB
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._kernel_peak:
            self.rss_peak = max(self.rss_peak, _kernel_rss_peak() or 0)
        peaks.cpu_rss_peak_gb = self.rss_peak / GB
        peaks.nvml_used_peak_gb = None if self.nvml_peak is None else self.nvml_peak / GB
        self.peaks = peaks


def _reset_kernel_rss_peak() -> bool:
    """Reset the kernel's peak-RSS counter for this process (Linux >= 4.0); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _kernel_rss_peak() is not None
    except OSError:
        return False


def _kernel_rss_peak() -> int | None:
    """VmHWM of /proc/self/status in bytes: the peak resident set size since the last reset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _nvml_handle(device: str):
    from infercomp.measure.nvml import device_handle

    try:
        return device_handle(device)
    except Exception:  # noqa: BLE001 - NVML is optional: absent package, driver, or permission
        return None


def weight_bytes(model) -> int:
    """Bytes the model's parameters and buffers occupy on this device (packed 4-bit weights
    counted as stored; a tensor-parallel shard counted as the shard, not the whole tensor)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(tensor_bytes(_local(t)) for t in tensors)


def tensor_bytes(tensor) -> int:
    """Bytes a tensor's data occupies. A quantized tensor subclass (torchao) reports the numel
    and element size of the float tensor it stands for; its real storage is the inner tensors
    it flattens to (packed values, scales, zero points), counted recursively."""
    import torch

    flatten = getattr(type(tensor), "__tensor_flatten__", None)
    if flatten is None or type(tensor) in (torch.Tensor, torch.nn.Parameter):
        return tensor.numel() * tensor.element_size()
    names, _ = tensor.__tensor_flatten__()
    return sum(tensor_bytes(getattr(tensor, n)) for n in names)


def _local(tensor):
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor  # DTensor: this rank's shard


def kv_bytes_per_token(model, kv_kind: str | None = None) -> int:
    """K and V for one token across all layers on this device, in the cache's real element bytes:
    layers x KV heads x 2 x (head_dim x bytes per value + scale bytes per token and KV head).

    kv_kind: the fast engine's cache kind (`FastEngine.kv_kind`): "int8" / "fp8" hold one-byte
    codes and one float32 scale per token and KV head, for K and for V; None (the model dtype) and
    "offloaded" (the model dtype, in host memory) hold head_dim values of the model's float dtype.
    The reference engine's caches count the model dtype (its quantized cache packs 2 or 4 bits
    with a window in the model dtype: its measured bytes are the figure to read)."""
    import torch

    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    kv_heads //= getattr(model, "_tp_size", None) or 1  # tensor parallel: this rank's heads
    # The compute dtype, not the first parameter's storage (quantized weights may be 1 byte or a
    # tensor subclass; the cache is kept in the compute dtype)
    dtype = getattr(model, "dtype", None)
    elem = torch.empty((), dtype=dtype).element_size() if isinstance(dtype, torch.dtype) else 2
    return kv_bytes(cfg.num_hidden_layers, kv_heads, head_dim, max(elem, 2), kv_kind)


CODED_KV_KINDS = ("int8", "fp8")  # one-byte codes with a float32 scale per token and KV head


def kv_bytes(layers: int, kv_heads: int, head_dim: int, value_bytes: int, kv_kind: str | None) -> int:
    """K and V of one token over `layers`: value_bytes per value, or for a coded kind one byte per
    value plus a float32 scale per KV head, for K and for V."""
    coded = kv_kind in CODED_KV_KINDS
    per_head = head_dim * (1 if coded else value_bytes) + (4 if coded else 0)
    return layers * 2 * kv_heads * per_head


def offloaded_device_bytes(engine) -> int | None:
    """The device part of an offloaded fast-engine cache (its layer buffers), None otherwise."""
    caches = [getattr(engine, "cache", None), getattr(engine, "draft_cache", None)]
    parts = [c.device_nbytes() for c in caches if c is not None and hasattr(c, "device_nbytes")]
    return sum(parts) if parts else None


def cache_tensor_bytes(cache) -> int | None:
    """Bytes held by a transformers Cache's layers (keys, values, quantized parts), counting each
    storage once; None when the object has no layers to inspect.

    Measured on the tensors themselves, so a static cache counts its whole preallocated length and
    a quantized cache its packed data. Tensor subclasses (quanto's packed tensors) are unwrapped
    into the plain tensors that hold their data.
    """
    layers = getattr(cache, "layers", None)
    if layers is None:
        return None
    seen: set[tuple[int, int]] = set()

    def add(t) -> int:
        if hasattr(t, "__tensor_flatten__") and type(t).__name__ != "Tensor":
            names, _ = t.__tensor_flatten__()
            return sum(add(getattr(t, n)) for n in names)
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        if key in seen or key[1] == 0:
            return 0
        seen.add(key)
        return key[1]

    import torch

    total = 0
    for layer in layers:
        for value in vars(layer).values():
            if isinstance(value, torch.Tensor) and value.dim() > 0:  # skip scalar counters
                total += add(value)
    return total
