"""The comparison table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infercomp.results import Results

STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow"}


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.1f}"


def comparison_table(results: Results) -> Table:
    """One row per method: medians over repeats, spread, speedup with its range or interval."""
    on_gpu = results.settings.get("device", "cpu").startswith("cuda")
    memory_label = "peak GPU GB" if on_gpu else "peak RSS GB"
    repeats = results.config.get("repeats", 1)
    title = f"infercomp: {results.config.get('main_model')} on {results.settings.get('device')}, median of {repeats}"
    table = Table(title=title)
    columns = (
        "method",
        "status",
        "execution",
        "tokens",
        "tok/s",
        "cv %",
        "speedup (range or CI)",
        "TTFT ms",
        "ITL ms",
        memory_label,
    )
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "status", "execution") else "right")
    for name, m in results.methods.items():
        style = STATUS_STYLE[m.status]
        if m.summary is None:
            table.add_row(name, f"[{style}]{m.status}[/]", m.execution or "", *[""] * (len(columns) - 3))
            continue
        s = m.summary
        cv = s.tokens_per_second_stats.cv
        speed = "n/a"
        if s.speedup is not None:
            speed = s.speedup.text()
        table.add_row(
            name,
            f"[{style}]{m.status}[/]",
            m.execution or "",
            str(s.new_tokens),
            f"{s.tokens_per_second:.1f}",
            "" if cv is None else f"{cv * 100:.1f}",
            speed,
            _ms(s.ttft_s),
            _ms(s.inter_token_latency_s),
            f"{s.peak_memory_gb:.2f}",
        )
    return table


def _num(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def quality_table(results: Results) -> Table | None:
    """Speed next to quality; * marks the Pareto front (no method both faster and lower in perplexity)."""
    rows = [(n, m) for n, m in results.methods.items() if m.quality and m.quality.unavailable is None and m.summary]
    if not rows:
        return None
    table = Table(title="speed vs quality (* = Pareto-optimal: tokens/s up, perplexity down)")
    for col in (
        "method",
        "tok/s",
        "perplexity",
        "distinct-2",
        "self-BLEU",
        "repetition",
        "required words",
        "= greedy",
        "pareto",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, m in rows:
        q = m.quality
        table.add_row(
            name,
            f"{m.summary.tokens_per_second:.1f}",
            _num(q.mean_perplexity, ".3f"),
            _num(q.distinct_2, ".3f"),
            _num(q.self_bleu, ".1f"),
            _num(q.repetition, ".3f"),
            _num(q.required_word_rate, ".0%"),
            _num(q.exact_match_vs_greedy, ".0%"),
            "*" if q.pareto_optimal else "",
        )
    return table


def print_results(results: Results, console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 160)
    console.print(comparison_table(results))
    quality = quality_table(results)
    if quality is not None:
        console.print(quality)
    for note in results.settings.get("notes", []):
        console.print(f"[yellow]setting[/] {escape(note)}")
    for name, m in results.methods.items():
        if m.reason:
            console.print(f"[{STATUS_STYLE[m.status]}]{name} {m.status}[/]: {escape(m.reason)}")
        if m.fallback:
            console.print(f"[yellow]{name} fallback[/]: {escape(m.fallback)}")
