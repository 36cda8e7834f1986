"""Energy from NVML's total-energy counter (millijoules since driver load), where the GPU has one.

The counter covers the whole GPU over a window of wall time: a method's window is each timed
repeat, its calls and the host work between them. It advances in steps whose length NVML does
not document, so a window of a few hundred milliseconds may hold one step or none: figures over
less than MIN_WINDOW_S seconds in all are withheld (figures.energy_of says so) rather than shown.
"""

from __future__ import annotations

import time

MIN_WINDOW_S = 1.0


class EnergyMeter:
    """Joules spent by the whole GPU over a `with` block, or a reason why there is no figure."""

    def __init__(self, device: str):
        self.device = device
        self.joules: float | None = None
        self.seconds: float | None = None  # the window's wall time
        self.unavailable: str | None = None
        self._handle = None
        self._start = None
        self._t0 = 0.0  # perf_counter at the window's start
        if not device.startswith("cuda"):
            self.unavailable = "not available: no GPU energy counter on CPU"
            return
        try:
            import pynvml

            from infercomp.measure.nvml import device_handle

            self._handle = device_handle(device)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except ImportError:
            self.unavailable = "not available: nvidia-ml-py is not installed (pip install 'infercomp[gpu]')"
        except Exception as exc:  # noqa: BLE001 - older GPUs and some drivers lack the counter
            self.unavailable = f"not available: NVML energy counter unsupported ({type(exc).__name__})"

    def __enter__(self) -> EnergyMeter:
        if self._handle is not None:
            import pynvml

            from infercomp.measure.timing import synchronize

            synchronize(self.device)
            self._start = pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None and self._start is not None:
            import pynvml

            from infercomp.measure.timing import synchronize

            synchronize(self.device)
            self.joules = (pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) - self._start) / 1000.0
            self.seconds = time.perf_counter() - self._t0
