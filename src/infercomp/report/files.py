"""Report files of a run folder: report.md, a self-contained report.html, completions.csv."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from infercomp.results import Results


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def summary_rows(results: Results) -> list[list[str]]:
    rows = []
    for name, m in results.methods.items():
        s, q = m.summary, m.quality
        if s is None:
            rows.append([name, m.status, m.reason or ""] + [""] * 7)
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
            ]
        )
    return rows


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
]


def markdown(results: Results) -> str:
    env = results.environment
    lines = [
        f"# infercomp report: {results.config.get('main_model')}",
        "",
        f"Run {results.created} on {env.get('gpu') or env.get('cpu')} ({results.settings.get('device')}), "
        f"torch {env.get('versions', {}).get('torch')}, transformers {env.get('versions', {}).get('transformers')}; "
        f"median of {results.config.get('repeats')} repeats after {results.config.get('warmup_runs')} warm-up call(s).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results)]
    notes = list(results.settings.get("notes", []))
    notes += [
        f"{n}: {m.reason or m.fallback or m.speculation}"
        for n, m in results.methods.items()
        if m.reason or m.fallback or m.speculation
    ]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


# On load, every chart is checked to have drawn something; the outcome lands in
# <body data-charts="...">, which a headless browser test reads.
CHECK_SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var svgs = document.querySelectorAll('figure svg');
  var drawn = 0;
  svgs.forEach(function (s) {
    var b = s.getBBox();
    if (b.width > 0 && b.height > 0 && s.querySelectorAll('path').length > 0) drawn++;
  });
  document.body.setAttribute('data-charts', drawn + '/' + svgs.length);
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child, td:nth-child(2), td:nth-child(3) { text-align: left; }
figure { margin: 1.5em 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
.note { color: #8a6d3b; }
"""


def html_report(results: Results) -> str:
    from infercomp.report.charts import CHARTS

    md_rows = summary_rows(results)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>infercomp report: {html.escape(str(results.config.get('main_model')))}</title>",
        f"<style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head><body>",
        f"<h1>infercomp report: {html.escape(str(results.config.get('main_model')))}</h1>",
        f"<p>{html.escape(markdown(results).splitlines()[2])}</p>",
        "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in HEADER) + "</tr>",
    ]
    parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in md_rows]
    parts.append("</table>")
    for title, make in CHARTS.items():
        svg = make(results)
        if svg is None:
            continue
        parts.append(f"<figure><figcaption>{html.escape(title)}</figcaption>{svg}</figure>")
    for note in results.settings.get("notes", []):
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


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
    for name, text in (("report.md", markdown(results)), ("report.html", html_report(results))):
        (directory / name).write_text(text)
        written.append(directory / name)
    completions_csv(results, directory / "completions.csv")
    written.append(directory / "completions.csv")
    return written
