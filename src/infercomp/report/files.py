"""Report files of a run folder: report.md, a self-contained report.html, completions.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from infercomp.report.tables import HEADER, QUALITY_HEADER, notes, quality_rows, run_line, summary_rows
from infercomp.results import Results


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    cell = lambda c: c.replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(cell(c) for c in row) + " |" for row in rows
    ]


def markdown(results: Results) -> str:
    lines = [f"# infercomp report: {results.config.get('main_model')}", "", run_line(results), ""]
    lines += _md_table(HEADER, summary_rows(results))
    quality = quality_rows(results)
    if quality:
        lines += ["", "## Speed and quality (* = Pareto-optimal)", ""] + _md_table(QUALITY_HEADER, quality)
    found = notes(results)
    if found:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in found]
    from infercomp.distributed.report import tensor_parallel_markdown

    lines += tensor_parallel_markdown(results)
    return "\n".join(lines) + "\n"


def completions_csv(results: Results, path: Path) -> None:
    fields = [
        "method",
        "prompt_index",
        "completion_index",
        "prompt_tokens",
        "new_tokens",
        "finish",
        "call_time_s",
        "tokens_per_second",
        "perplexity",
        "text",
    ]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(fields)
        for name, m in results.methods.items():
            for c in m.completions:
                writer.writerow(
                    [
                        name,
                        c.prompt_index,
                        c.completion_index,
                        c.prompt_tokens,
                        c.new_tokens,
                        c.finish,
                        f"{c.call_time_s:.6f}",
                        f"{c.tokens_per_second:.3f}",
                        "" if c.perplexity is None else f"{c.perplexity:.5f}",
                        c.text,
                    ]
                )


def write_reports(results: Results, directory: str | Path) -> list[Path]:
    directory = Path(directory)
    written = []
    from infercomp.report.html import html_report

    for name, text in (("report.md", markdown(results)), ("report.html", html_report(results))):
        (directory / name).write_text(text, encoding="utf-8")
        written.append(directory / name)
    completions_csv(results, directory / "completions.csv")
    written.append(directory / "completions.csv")
    return written
