"""Charts as inline SVG strings (matplotlib, Agg backend): a report needs no network to open."""

from __future__ import annotations

import io

from infercomp.results import Results


def _figure(width: float = 7.0, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    return plt, fig, ax


def _svg(plt, fig) -> str:
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML


def _ok(results: Results):
    return [(n, m) for n, m in results.methods.items() if m.summary is not None]


def throughput(results: Results) -> str | None:
    """Median tokens/s per method, with the min-max range over repeats."""
    rows = _ok(results)
    if not rows:
        return None
    plt, fig, ax = _figure()
    names = [n for n, _ in rows]
    med = [m.summary.tokens_per_second for _, m in rows]
    lo = [med[i] - (m.summary.tokens_per_second_stats.min or med[i]) for i, (_, m) in enumerate(rows)]
    hi = [(m.summary.tokens_per_second_stats.max or med[i]) - med[i] for i, (_, m) in enumerate(rows)]
    ax.barh(names, med, xerr=[lo, hi], color="#4c72b0", capsize=3)
    ax.invert_yaxis()
    ax.set_xlabel("tokens/s (median of repeats; bars: min-max)")
    return _svg(plt, fig)


def latency(results: Results) -> str | None:
    """Distribution of per-call wall times (every repeat) per method."""
    rows = [(n, [t for c in m.completions for t in (c.call_times_s or [c.call_time_s])]) for n, m in _ok(results)]
    rows = [(n, v) for n, v in rows if v]
    if not rows:
        return None
    plt, fig, ax = _figure()
    ax.boxplot([v for _, v in rows], orientation="horizontal", tick_labels=[n for n, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("call wall time, s (each completion's call, every repeat)")
    return _svg(plt, fig)


def memory(results: Results) -> str | None:
    """Peak memory split into weights, KV cache and the rest."""
    rows = [(n, m.summary) for n, m in _ok(results) if m.summary.memory is not None]
    if not rows:
        return None
    plt, fig, ax = _figure()
    names = [n for n, _ in rows]
    weights = [s.memory.weights_gb for _, s in rows]
    kv = [
        s.memory.kv_cache_gb if s.memory.kv_cache_gb is not None else s.memory.kv_cache_formula_gb or 0.0
        for _, s in rows
    ]
    other = [max(0.0, s.memory.other_gb or 0.0) for _, s in rows]
    ax.barh(names, weights, label="weights", color="#4c72b0")
    ax.barh(names, kv, left=weights, label="KV cache", color="#dd8452")
    ax.barh(names, other, left=[w + k for w, k in zip(weights, kv, strict=True)], label="other", color="#bbbbbb")
    ax.invert_yaxis()
    kind = "GPU allocated" if results.settings.get("device", "cpu").startswith("cuda") else "process RSS"
    ax.set_xlabel(f"peak memory, GB ({kind})")
    ax.legend(loc="lower right", fontsize=8)
    return _svg(plt, fig)


def speed_vs_quality(results: Results) -> str | None:
    """Tokens/s against mean perplexity, the Pareto front joined."""
    rows = [(n, m) for n, m in _ok(results) if m.quality and m.quality.mean_perplexity is not None]
    if not rows:
        return None
    plt, fig, ax = _figure(7.0, 3.8)
    for n, m in rows:
        front = bool(m.quality.pareto_optimal)
        ax.scatter(m.quality.mean_perplexity, m.summary.tokens_per_second, color="#c44e52" if front else "#4c72b0")
        ax.annotate(
            n,
            (m.quality.mean_perplexity, m.summary.tokens_per_second),
            fontsize=7,
            xytext=(4, 2),
            textcoords="offset points",
        )
    front = sorted(
        (m.quality.mean_perplexity, m.summary.tokens_per_second) for _, m in rows if m.quality.pareto_optimal
    )
    if len(front) > 1:
        ax.plot([p for p, _ in front], [t for _, t in front], color="#c44e52", linewidth=1)
    ax.set_xlabel("mean perplexity under the main model (lower is better)")
    ax.set_ylabel("tokens/s")
    return _svg(plt, fig)


def acceptance(results: Results) -> str | None:
    """For each speculative method: share of rounds by number of accepted drafts."""
    rows = [(n, m.speculative) for n, m in _ok(results) if m.speculative is not None]
    if not rows:
        return None
    plt, fig, ax = _figure()
    width = 0.8 / len(rows)
    for i, (n, acc) in enumerate(rows):
        total = sum(acc.accepted_histogram) or 1
        xs = [j + i * width for j in range(len(acc.accepted_histogram))]
        rate = f"{acc.acceptance_rate:.0%}" if acc.acceptance_rate is not None else "n/a"
        ax.bar(xs, [h / total for h in acc.accepted_histogram], width=width, label=f"{n} (acceptance {rate})")
    ax.set_xlabel("drafts accepted in a round")
    ax.set_ylabel("share of rounds")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


CHARTS = {
    "Throughput": throughput,
    "Latency distribution": latency,
    "Peak memory": memory,
    "Speed vs quality": speed_vs_quality,
    "Speculative acceptance": acceptance,
}
