"""The comparison table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infercomp.report.flags import FLAGS_NOTE, flags_text
from infercomp.report.tables import QUALITY_HEADER, SPEED_HEADER, quality_rows, same_texts, speed_cells
from infercomp.results import Results

STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow"}


def comparison_table(results: Results) -> Table:
    """One row per method: medians over repeats, spread, speedup with its range or interval."""
    on_gpu = results.settings.get("device", "cpu").startswith("cuda")
    memory_label = "peak GPU GB" if on_gpu else "peak RSS GB"
    repeats = results.config.get("repeats", 1)
    title = f"infercomp: {results.config.get('main_model')} on {results.settings.get('device')}, median of {repeats}"
    table = Table(title=title)
    columns = ["method", "status", "execution", "tokens", *SPEED_HEADER[:-1], memory_label, "flags"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "status", "execution") else "right")
    for name, m in results.methods.items():
        style = STATUS_STYLE[m.status]
        if m.summary is None:
            table.add_row(name, f"[{style}]{m.status}[/]", m.execution or "", *[""] * (len(columns) - 3))
            continue
        cells = [escape(c) for c in speed_cells(m.summary)]
        cells[2] = cells[2] or "n/a"  # the speedup: no baseline measured
        table.add_row(
            name,
            f"[{style}]{m.status}[/]",
            m.execution or "",
            str(m.summary.new_tokens),
            *cells,
            f"[yellow]{escape(flags_text(m))}[/]",
        )
    return table


def quality_table(results: Results) -> Table | None:
    """Speed next to quality; * marks the Pareto front (no method both faster and lower in perplexity)."""
    rows = quality_rows(results)
    if not rows:
        return None
    table = Table(title="speed vs quality (* = Pareto-optimal: tokens/s up, perplexity down)")
    for col in QUALITY_HEADER:
        table.add_column(col, justify="left" if col == "method" else "right")
    for row in rows:
        table.add_row(*(escape(c) for c in row))
    return table


def print_results(results: Results, console: Console | None = None) -> None:
    console = console or Console(width=None if Console().is_terminal else 160)
    console.print(comparison_table(results))
    quality = quality_table(results)
    if quality is not None:
        console.print(quality)
    if any(flags_text(m) for m in results.methods.values()):
        console.print(f"[yellow]{escape(FLAGS_NOTE)}[/]")
    for note in results.settings.get("notes", []):
        console.print(f"[yellow]setting[/] {escape(note)}")
    for note in same_texts(results):
        console.print(f"[yellow]same texts[/] {escape(note)}")
    for name, m in results.methods.items():
        if m.reason:
            console.print(f"[{STATUS_STYLE[m.status]}]{name} {m.status}[/]: {escape(m.reason)}")
        if m.fallback:
            console.print(f"[yellow]{name} fallback[/]: {escape(m.fallback)}")
