"""The process a run lives in: interrupts that stop it, torch's thread count, and whether each
method gets a fresh Python process of its own."""

from __future__ import annotations

import os
from contextlib import contextmanager

from infercomp.config import Config

_INTERRUPTED = 0  # the signal number that stopped the run, 0 while running
_DEFERRED = False  # True while a KeyboardInterrupt could only be raised somewhere unsafe


def install_interrupt_handlers() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered, so an interrupt that some
    library turns into an ordinary exception still stops the run instead of failing one method."""
    import signal

    def handler(signum, frame):
        global _INTERRUPTED
        # A second signal while the first one's cleanup runs: stop now. What is measured is saved
        # by then; left behind may be a temporary folder, a hidden terminal cursor, children.
        if _INTERRUPTED:
            exit_at_once(128 + signum)
        _INTERRUPTED = signum
        if not _DEFERRED:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@contextmanager
def interrupts_deferred():
    """Hold an interrupt until the block ends, then raise it. For imports of torch and
    transformers: a KeyboardInterrupt raised inside a Python callback of torch's C++ import code
    terminates the process (SIGABRT) instead of unwinding."""
    global _DEFERRED
    outer, _DEFERRED = _DEFERRED, True
    try:
        yield
    finally:
        _DEFERRED = outer
        if _INTERRUPTED and not outer:  # the interrupt, not whatever the block raised meanwhile
            raise KeyboardInterrupt


def import_libraries() -> None:
    """Import torch and the transformers classes a run uses, with interrupts held (see above)."""
    with interrupts_deferred():
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401


def exit_at_once(code: int) -> None:
    """Flush the standard streams and leave without interpreter shutdown.

    An interrupted run has saved what it keeps by now; what shutdown would add is harm. When the
    KeyboardInterrupt passed through code a C extension ran with PyRun_*, Python remembers it as
    unhandled and, after a clean `sys.exit(143)`, kills itself with SIGINT (exit -2); and the
    finalizers of a library stopped half-way through its import can abort (-6)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be said there
            pass
    os._exit(code)


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
