"""Report files of a run folder: report.md, a self-contained report.html, completions.csv."""

from __future__ import annotations

import csv
from pathlib import Path

from infercomp.report.flags import FLAGS_NOTE, flags_text
from infercomp.results import Results


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def summary_rows(results: Results) -> list[list[str]]:
    rows = []
    for name, m in results.methods.items():
        s, q = m.summary, m.quality
        if s is None:
            rows.append([name, m.status, m.reason or ""] + [""] * 8)
            continue
        speed = ""
        if s.speedup:
            speed = s.speedup.text()
        rows.append(
            [
                name,
                m.status,
                m.execution or "",
                f"{s.tokens_per_second:.1f}",
                _fmt(s.tokens_per_second_stats.cv and s.tokens_per_second_stats.cv * 100, ".1f"),
                speed,
                _fmt(s.ttft_s and s.ttft_s * 1000, ".1f"),
                _fmt(s.inter_token_latency_s and s.inter_token_latency_s * 1000, ".2f"),
                f"{s.peak_memory_gb:.2f}",
                _fmt(q.mean_perplexity if q else None, ".3f"),
                flags_text(m),
            ]
        )
    return rows


QUALITY_HEADER = [
    "method",
    "tok/s",
    "perplexity",
    "distinct-2",
    "self-BLEU",
    "repetition",
    "required words",
    "= greedy",
    "pareto",
]


def quality_rows(results: Results) -> list[list[str]]:
    """Speed next to quality for every method that was scored."""
    rows = []
    for name, m in results.methods.items():
        q = m.quality
        if m.summary is None or q is None or q.unavailable is not None:
            continue
        rows.append(
            [
                name,
                f"{m.summary.tokens_per_second:.1f}",
                _fmt(q.mean_perplexity, ".3f"),
                _fmt(q.distinct_2, ".3f"),
                _fmt(q.self_bleu, ".1f"),
                _fmt(q.repetition, ".3f"),
                _fmt(q.required_word_rate, ".0%"),
                _fmt(q.exact_match_vs_greedy, ".0%"),
                "*" if q.pareto_optimal else "",
            ]
        )
    return rows


def notes(results: Results) -> list[str]:
    """Everything a reader must know beside the figures: settings that fell back, why methods
    failed, were skipped, fell back or ran without speculation, and what the flags mean."""
    out = list(results.settings.get("notes", []))
    out += [
        f"{n}: {m.reason or m.fallback or m.speculation}"
        for n, m in results.methods.items()
        if m.reason or m.fallback or m.speculation
    ]
    unscored = {m.quality.unavailable for m in results.methods.values() if m.quality and m.quality.unavailable}
    out += [f"quality: {u}" for u in sorted(unscored)]
    if any(flags_text(m) for m in results.methods.values()):
        out.append(FLAGS_NOTE)
    return out


def run_line(results: Results) -> str:
    env = results.environment
    versions = env.get("versions", {})
    return (
        f"Run {results.created} on {env.get('gpu') or env.get('cpu')} ({results.settings.get('device')}), "
        f"infercomp {env.get('infercomp_version') or versions.get('infercomp')} (git {env.get('git_revision')}), "
        f"torch {versions.get('torch')}, transformers {versions.get('transformers')}; "
        f"median of {results.config.get('repeats')} repeats after {results.config.get('warmup_runs')} warm-up call(s)."
    )


HEADER = [
    "method",
    "status",
    "execution",
    "tok/s",
    "cv %",
    "speedup (range or CI)",
    "TTFT ms",
    "ITL ms",
    "peak GB",
    "perplexity",
    "flags",
]


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
