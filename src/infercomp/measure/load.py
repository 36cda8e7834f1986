"""CPU load from other processes while a method ran: what makes CPU timings swing several-fold.

Over the measured span: the CPU time the whole machine spent busy, minus the time this process
and its children spent; divided by the wall time this is the average number of cores other
processes kept busy. Steal (time a hypervisor gave this VM's CPUs to someone else) is read where
the kernel reports it. A method is flagged `loaded` when others used at least LOADED_SHARE of the
machine's cores on average, or steal took at least STEAL_SHARE of them.
"""

from __future__ import annotations

import os
import time

LOADED_SHARE = 0.10  # of all cores, on average over the method's span
STEAL_SHARE = 0.02


def _busy_seconds(times) -> float:
    # Steal is counted on its own, not as another process's work.
    idle = times.idle + getattr(times, "iowait", 0.0) + getattr(times, "steal", 0.0)
    total = sum(getattr(times, f) for f in times._fields if f not in ("guest", "guest_nice"))
    return total - idle


def _own_seconds(proc) -> float:
    """CPU seconds of this process plus its live and reaped children."""
    t = proc.cpu_times()
    own = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            own += c.user + c.system
        except Exception:  # noqa: BLE001 - a child that ended between listing and reading
            continue
    return own


class OtherLoad:
    """`with OtherLoad() as load: ...` then `load.record()`; inert (None) without psutil."""

    def __init__(self):
        self.start: tuple | None = None
        self.span: tuple | None = None

    def __enter__(self) -> OtherLoad:
        try:
            import psutil

            self._proc = psutil.Process(os.getpid())
            self.start = self._sample(psutil)
        except Exception:  # noqa: BLE001 - no psutil, or /proc unreadable: no load figure
            self.start = None
        return self

    def _sample(self, psutil) -> tuple:
        times = psutil.cpu_times()
        return time.perf_counter(), _busy_seconds(times), _own_seconds(self._proc), getattr(times, "steal", None)

    def __exit__(self, *exc) -> None:
        if self.start is None:
            return
        import psutil

        end = self._sample(psutil)
        self.span = tuple(
            e - s if e is not None and s is not None else None for s, e in zip(self.start, end, strict=True)
        )

    def record(self) -> dict | None:
        """{'seconds', 'cores', 'other_cores', 'other_share', 'steal_share', 'loaded'} or None."""
        if self.span is None or not self.span[0]:
            return None
        wall, busy, own, steal = self.span
        cores = os.cpu_count() or 1
        other = max(0.0, busy - own) / wall
        steal_share = None if steal is None else max(0.0, steal) / (wall * cores)
        share = other / cores
        return {
            "seconds": round(wall, 3),
            "cores": cores,
            "other_cores": round(other, 3),
            "other_share": round(share, 4),
            "steal_share": None if steal_share is None else round(steal_share, 4),
            "loaded": share >= LOADED_SHARE or (steal_share or 0.0) >= STEAL_SHARE,
        }
