"""The comparison table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infercomp.results import Results

STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow"}


def comparison_table(results: Results, baseline: str = "standard") -> Table:
    """One row per method; speedup is tokens/s over the baseline method's (same run)."""
    base = results.methods.get(baseline)
    base_tps = base.summary.tokens_per_second if base and base.summary else None
    memory_label = "peak GPU GB" if results.settings.get("device", "cpu").startswith("cuda") else "peak RSS GB"
    table = Table(title=f"infercomp: {results.config.get('main_model')} on {results.settings.get('device')}")
    for col in (
        "method",
        "status",
        "execution",
        "completions",
        "tokens",
        "time s",
        "tok/s",
        "median latency s",
        memory_label,
        f"vs {baseline}",
    ):
        table.add_column(col, justify="left" if col in ("method", "status", "execution") else "right")
    for name, m in results.methods.items():
        style = STATUS_STYLE[m.status]
        if m.summary is None:
            table.add_row(name, f"[{style}]{m.status}[/]", m.execution or "", *[""] * 7)
            continue
        s = m.summary
        speed = f"{s.tokens_per_second / base_tps:.2f}x" if base_tps else "n/a"
        table.add_row(
            name,
            f"[{style}]{m.status}[/]",
            m.execution or "",
            str(s.completions),
            str(s.new_tokens),
            f"{s.total_time_s:.2f}",
            f"{s.tokens_per_second:.1f}",
            f"{s.latency_median_s:.3f}",
            f"{s.peak_memory_gb:.2f}",
            speed,
        )
    return table


def print_results(results: Results, console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 160)
    console.print(comparison_table(results))
    for note in results.settings.get("notes", []):
        console.print(f"[yellow]setting[/] {escape(note)}")
    for name, m in results.methods.items():
        if m.reason:
            console.print(f"[{STATUS_STYLE[m.status]}]{name} {m.status}[/]: {escape(m.reason)}")
        if m.fallback:
            console.print(f"[yellow]{name} fallback[/]: {escape(m.fallback)}")
