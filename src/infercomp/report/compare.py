"""Runs side by side: tokens/s per method in each run, and the ratio to the first run.

Ratios mean something only when the runs measured the same workload (models, prompts, counts,
lengths, sampling). `workload_differences` names the fields that differ, and the command refuses
ratios across different workloads unless forced; `incomplete_runs` names runs with methods
missing or failed, which the tables state beside the figures.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from infercomp.results import Results


def load_runs(directories: list[str]) -> list[tuple[str, Results]]:
    return [(Path(d).name or d, Results.load(d)) for d in directories]


# What was computed; the fields left out (device, dtype, engine, quantization, cache, threads,
# isolation, ...) are what a comparison is usually for.
WORKLOAD_FIELDS = (
    "main_model",
    "assistant_model",
    "load_format",
    "prompts",
    "num_completions",
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "batch_size",
    "fixed_length",
    "seed",
)


def workload_differences(runs: list[tuple[str, Results]]) -> list[str]:
    """One line per workload field whose value differs between the runs."""
    lines = []
    for name in WORKLOAD_FIELDS:
        values = [res.config.get(name) for _, res in runs]
        if any(v != values[0] for v in values[1:]):
            shown = ", ".join(f"{label}={_short(v)}" for (label, _), v in zip(runs, values, strict=True))
            lines.append(f"{name}: {shown}")
    return lines


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def incomplete_runs(runs: list[tuple[str, Results]]) -> list[str]:
    """One line per run with planned methods missing or failed."""
    lines = []
    for label, res in runs:
        missing = list(res.incomplete)
        failed = [n for n, m in res.methods.items() if m.status == "failed"]
        parts = ([f"not run: {', '.join(missing)}"] if missing else []) + (
            [f"failed: {', '.join(failed)}"] if failed else []
        )
        if parts:
            lines.append(f"{label} is incomplete ({'; '.join(parts)})")
    return lines


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


def caveats(runs: list[tuple[str, Results]]) -> list[str]:
    diffs = workload_differences(runs)
    lines = [f"different workloads, ratios not comparable: {d}" for d in diffs]
    return lines + incomplete_runs(runs)


def comparison_table(runs: list[tuple[str, Results]]) -> Table:
    header, rows = comparison_rows(runs)
    notes = caveats(runs)
    table = Table(title="infercomp compare: median tokens/s per method", caption="\n".join(notes) or None)
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
    lines += [f"- note: {n}" for n in caveats(runs)]
    for label, res in runs:
        env = res.environment
        lines.append(
            f"- {label}: {res.config.get('main_model')} on {env.get('gpu') or env.get('cpu')}, "
            f"{res.created}, git {env.get('git_revision')}"
        )
    return "\n".join(lines) + "\n"
