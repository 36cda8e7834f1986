"""Charts as inline SVG strings (matplotlib, Agg backend): a report needs no network to open."""

from __future__ import annotations

import io

from infercomp.results import Results

# Drawn at 10 in wide and scaled by the page to its width: at 1400 px the 11 pt text shows at
# about 20 px, at 800 px at about 11 px; both stay readable.
WIDTH_IN = 10.0
FONT_PT = 11


def _figure(rows: int = 4, height: float | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": FONT_PT, "axes.titlesize": FONT_PT, "legend.fontsize": FONT_PT - 1})
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height or max(2.4, 0.32 * rows + 1.2)))
    return plt, fig, ax


def _svg(plt, fig, layout: bool = True) -> str:
    import re

    buf = io.StringIO()
    if layout:  # not after labels were placed: a new layout moves points, not their labels' offsets
        fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # drop the XML prolog: the SVG is inlined in HTML
    # Let the page size it (its viewBox keeps the proportions): the chart fills the width.
    head, rest = text.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    return head + ' preserveAspectRatio="xMinYMin meet">' + rest


def _ok(results: Results):
    return [(n, m) for n, m in results.methods.items() if m.summary is not None]


def throughput(results: Results) -> str | None:
    """Median tokens/s per method, with the min-max range over repeats."""
    rows = _ok(results)
    if not rows:
        return None
    plt, fig, ax = _figure(len(rows))
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
    plt, fig, ax = _figure(len(rows))
    ax.boxplot([v for _, v in rows], orientation="horizontal", tick_labels=[n for n, _ in rows])
    ax.invert_yaxis()
    ax.set_xlabel("call wall time, s (each completion's call, every repeat)")
    return _svg(plt, fig)


def memory(results: Results) -> str | None:
    """Peak memory split into weights, KV cache and the rest; each bar's parts written beside it,
    since a KV cache of a few MB is thinner than a pixel next to the weights."""
    rows = [(n, m.summary) for n, m in _ok(results) if m.summary.memory is not None]
    if not rows:
        return None
    plt, fig, ax = _figure(len(rows) + 1)
    names = [n for n, _ in rows]
    weights = [s.memory.weights_gb for _, s in rows]
    kv = [
        s.memory.kv_cache_gb if s.memory.kv_cache_gb is not None else s.memory.kv_cache_formula_gb or 0.0
        for _, s in rows
    ]
    other = [max(0.0, s.memory.other_gb or 0.0) for _, s in rows]
    ax.barh(names, weights, label="weights", color="#4c72b0")
    # A dark edge keeps even a thin KV segment visible as a line.
    ax.barh(names, kv, left=weights, label="KV cache", color="#dd8452", edgecolor="#8c3d10", linewidth=1.2)
    ends = [w + k for w, k in zip(weights, kv, strict=True)]
    ax.barh(names, other, left=ends, label="other", color="#bbbbbb")
    totals = [e + o for e, o in zip(ends, other, strict=True)]
    for i, (w, k, o) in enumerate(zip(weights, kv, other, strict=True)):
        ax.text(
            totals[i], i, f"  w {w:.2f} | KV {k * 1000:.1f} MB | other {o:.2f} GB", va="center", fontsize=FONT_PT - 2
        )
    ax.set_xlim(0, max(totals) * 1.6 if max(totals) > 0 else 1)  # room for the labels
    ax.invert_yaxis()
    kind = "GPU allocated" if results.settings.get("device", "cpu").startswith("cuda") else "process RSS"
    ax.set_xlabel(f"peak memory, GB ({kind})")
    # Above the axes, never over the bars.
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, frameon=False)
    return _svg(plt, fig)


def _place_labels(fig, ax, points: list[tuple[str, float, float]]) -> None:
    """Label each point where its text overlaps no other label and no other point: try offsets
    around the point in turn, measuring the drawn text (display pixels) against those placed."""
    renderer = fig.canvas.get_renderer()
    offsets = [(6, 4), (6, -14), (-6, 4), (-6, -14), (6, 16), (-6, 16), (6, -26), (-6, -26), (0, 28), (0, -36)]
    dots = [ax.transData.transform((x, y)) for _, x, y in points]
    placed = []

    def label(i: int, name: str, x: float, y: float, dx: int, dy: int):
        ann = ax.annotate(
            name,
            (x, y),
            xytext=(dx, dy),
            textcoords="offset points",
            fontsize=FONT_PT - 1,
            ha="left" if dx >= 0 else "right",
            gid=f"label-{i}",
        )
        return ann, ann.get_window_extent(renderer).expanded(1.04, 1.1)

    for i, (name, x, y) in enumerate(points):
        for dx, dy in offsets:
            ann, box = label(i, name, x, y, dx, dy)
            hits_dot = any(box.contains(px, py) for j, (px, py) in enumerate(dots) if j != i)
            if not hits_dot and all(not box.overlaps(b) for b in placed):
                break
            ann.remove()
        else:  # no free place: keep the first choice rather than drop the label
            ann, box = label(i, name, x, y, *offsets[0])
        placed.append(box)


def speed_vs_quality(results: Results) -> str | None:
    """Tokens/s against mean perplexity, the Pareto front joined."""
    rows = [(n, m) for n, m in _ok(results) if m.quality and m.quality.mean_perplexity is not None]
    if not rows:
        return None
    plt, fig, ax = _figure(height=4.2)
    for _, m in rows:
        front = bool(m.quality.pareto_optimal)
        ax.scatter(m.quality.mean_perplexity, m.summary.tokens_per_second, color="#c44e52" if front else "#4c72b0")
    ax.margins(x=0.25, y=0.2)  # room for labels at the edges
    fig.tight_layout()
    _place_labels(fig, ax, [(n, m.quality.mean_perplexity, m.summary.tokens_per_second) for n, m in rows])
    front = sorted(
        (m.quality.mean_perplexity, m.summary.tokens_per_second) for _, m in rows if m.quality.pareto_optimal
    )
    if len(front) > 1:
        ax.plot([p for p, _ in front], [t for _, t in front], color="#c44e52", linewidth=1)
    ax.set_xlabel("mean perplexity under the main model (lower is better)")
    ax.set_ylabel("tokens/s")
    return _svg(plt, fig, layout=False)


def acceptance(results: Results) -> str | None:
    """For each speculative method: share of rounds by number of accepted drafts."""
    rows = [(n, m.speculative) for n, m in _ok(results) if m.speculative is not None]
    if not rows:
        return None
    plt, fig, ax = _figure(height=3.2)
    width = 0.8 / len(rows)
    for i, (n, acc) in enumerate(rows):
        total = sum(acc.accepted_histogram) or 1
        xs = [j + i * width for j in range(len(acc.accepted_histogram))]
        rate = f"{acc.acceptance_rate:.0%}" if acc.acceptance_rate is not None else "n/a"
        ax.bar(xs, [h / total for h in acc.accepted_histogram], width=width, label=f"{n} (acceptance {rate})")
    ax.set_xlabel("drafts accepted in a round")
    ax.set_ylabel("share of rounds")
    ax.legend()
    return _svg(plt, fig)


CHARTS = {
    "Throughput": throughput,
    "Latency distribution": latency,
    "Peak memory": memory,
    "Speed vs quality": speed_vs_quality,
    "Speculative acceptance": acceptance,
}
