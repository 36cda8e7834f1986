"""The process a run lives in: interrupts that stop it, torch's thread count, and whether each
method gets a fresh Python process of its own."""

from __future__ import annotations

import os

from infercomp.config import Config

_INTERRUPTED = 0  # the signal number that stopped the run, 0 while running


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered, so an interrupt that some
    library turns into an ordinary exception still stops the run instead of failing one method."""
    import signal

    def handler(signum, frame):
        global _INTERRUPTED
        _INTERRUPTED = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def interrupt_signal() -> int:
    """The signal that interrupted the run (2 SIGINT, 15 SIGTERM), or 0."""
    return _INTERRUPTED


def configure_threads(config: Config) -> int:
    """Fix torch's CPU thread count: the default and the OpenMP wait policy swing CPU timings
    several-fold when anything else uses the cores."""
    import torch

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # effective only before torch starts OpenMP
    threads = config.num_threads or physical_cores()
    torch.set_num_threads(threads)
    return threads


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def isolation_mode(config: Config) -> str:
    if config.isolation != "auto":
        return config.isolation
    if config.interleave:
        return "none"
    import torch

    on_gpu = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    return "process" if on_gpu else "none"
