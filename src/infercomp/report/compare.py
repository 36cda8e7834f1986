"""Runs side by side: tokens/s per method in each run, and the ratio to the first run."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from infercomp.results import Results


def load_runs(directories: list[str]) -> list[tuple[str, Results]]:
    return [(Path(d).name or d, Results.load(d)) for d in directories]


def comparison_rows(runs: list[tuple[str, Results]]) -> tuple[list[str], list[list[str]]]:
    header = ["method"]
    for label, _ in runs:
        header.append(f"{label} tok/s")
    for label, _ in runs[1:]:
        header.append(f"{label} / {runs[0][0]}")
    methods: list[str] = []
    for _, res in runs:
        methods += [n for n in res.methods if n not in methods]
    rows = []
    for name in methods:
        rates = []
        for _, res in runs:
            m = res.methods.get(name)
            rates.append(m.summary.tokens_per_second if m and m.summary else None)
        row = [name] + ["" if r is None else f"{r:.1f}" for r in rates]
        row += ["" if r is None or rates[0] in (None, 0) else f"{r / rates[0]:.2f}x" for r in rates[1:]]
        rows.append(row)
    return header, rows


def comparison_table(runs: list[tuple[str, Results]]) -> Table:
    header, rows = comparison_rows(runs)
    table = Table(title="infercomp compare: median tokens/s per method")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def comparison_markdown(runs: list[tuple[str, Results]]) -> str:
    header, rows = comparison_rows(runs)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    for label, res in runs:
        env = res.environment
        lines.append(
            f"- {label}: {res.config.get('main_model')} on {env.get('gpu') or env.get('cpu')}, "
            f"{res.created}, git {env.get('git_revision')}"
        )
    return "\n".join(lines) + "\n"
