"""Warnings a reader must see beside a method's figures: noisy repeats, a loaded machine."""

from __future__ import annotations

HIGH_CV = 0.10  # tokens/s varied more than 10 % between repeats


def method_flags(m) -> list[str]:
    """Short flags for one MethodResult; empty when its figures need no caveat."""
    flags = []
    s = m.summary
    cv = s.tokens_per_second_stats.cv if s is not None else None
    if cv is not None and cv > HIGH_CV:
        flags.append(f"high cv {cv * 100:.0f}%")
    load = m.cpu_load or {}
    if load.get("loaded"):
        text = f"loaded {load['other_cores']:.1f}/{load['cores']} cores"
        if (load.get("steal_share") or 0.0) >= 0.01:
            text += f", steal {load['steal_share'] * 100:.0f}%"
        flags.append(text)
    return flags


def flags_text(m) -> str:
    return "; ".join(method_flags(m))


FLAGS_NOTE = (
    f"flags: 'high cv' = tokens/s varied more than {HIGH_CV:.0%} between repeats; 'loaded X/N cores' = other "
    "processes kept X of the machine's N cores busy on average while the method ran (flagged from 10% of "
    "the cores, or 2% steal), so its timings are slower and noisier than on an idle machine"
)
