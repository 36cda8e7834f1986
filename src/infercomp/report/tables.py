"""The report tables' columns and cells, shared by the console, report.md and report.html:
one place says which figures a table shows and how each is formatted."""

from __future__ import annotations

from infercomp.report.flags import FLAGS_NOTE, flags_text
from infercomp.results import Results


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


# The speed columns every table shows, in this order; `speed_cells` fills them.
SPEED_HEADER = ["tok/s", "cv %", "speedup (range or CI)", "TTFT ms", "ITL ms", "peak GB"]


def speed_cells(s) -> list[str]:
    """A method's Summary as the SPEED_HEADER cells: medians over repeats, spread, speedup."""
    cv = s.tokens_per_second_stats.cv
    return [
        f"{s.tokens_per_second:.1f}",
        _fmt(cv and cv * 100, ".1f"),
        s.speedup.text() if s.speedup else "",
        _fmt(s.ttft_s and s.ttft_s * 1000, ".1f"),
        _fmt(s.inter_token_latency_s and s.inter_token_latency_s * 1000, ".2f"),
        f"{s.peak_memory_gb:.2f}",
    ]


def summary_rows(results: Results) -> list[list[str]]:
    rows = []
    for name, m in results.methods.items():
        s, q = m.summary, m.quality
        if s is None:
            rows.append([name, m.status, m.reason or ""] + [""] * 8)
            continue
        rows.append(
            [
                name,
                m.status,
                m.execution or "",
                *speed_cells(s),
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
        f"{n}: {m.reason or m.fallback or m.speculation_note}"
        for n, m in results.methods.items()
        if m.reason or m.fallback or m.speculation_note
    ]
    out += same_texts(results)
    unscored = {m.quality.unavailable for m in results.methods.values() if m.quality and m.quality.unavailable}
    out += [f"quality: {u}" for u in sorted(unscored)]
    if any(flags_text(m) for m in results.methods.values()):
        out.append(FLAGS_NOTE)
    return out


def same_texts(results: Results) -> list[str]:
    """A line per group of methods whose completions are the same texts: greedy methods that agree,
    or sampling settings close enough to pick the same tokens from the same seeded draws (the
    quick preset's `batched` and `nucleus_sampling` on the embedded model). Their quality columns
    then measure one set of texts; only their speeds are separate measurements."""
    groups: dict[tuple, list[str]] = {}
    for name, m in results.methods.items():
        texts = tuple((c.prompt_index, c.completion_index, c.text) for c in m.completions)
        if m.status == "ok" and texts:
            groups.setdefault(tuple(sorted(texts)), []).append(name)
    return [
        f"{', '.join(_with_settings(n, results.methods[n].generation) for n in names)}: the same {_count(len(texts))}, "
        "so their quality figures describe one set of texts; only their speeds are separate measurements"
        for texts, names in groups.items()
        if len(names) > 1
    ]


def _count(n: int) -> str:
    return f"{n} text" if n == 1 else f"{n} texts"


def _with_settings(name: str, generation: dict) -> str:
    shown = {k: generation[k] for k in ("temperature", "top_p", "top_k", "num_beams") if k in generation}
    if not generation.get("do_sample", False) and "num_beams" not in shown:
        return f"{name} (greedy)"
    return f"{name} ({', '.join(f'{k} {v}' for k, v in shown.items())})"


def run_line(results: Results) -> str:
    env = results.environment
    versions = env.get("versions", {})
    return (
        f"Run {results.created} on {env.get('gpu') or env.get('cpu')} ({results.settings.get('device')}), "
        f"infercomp {env.get('infercomp_version') or versions.get('infercomp')} (git {env.get('git_revision')}), "
        f"torch {versions.get('torch')}, transformers {versions.get('transformers')}; "
        f"median of {results.config.get('repeats')} repeats after {results.config.get('warmup_runs')} warm-up call(s)."
    )


HEADER = ["method", "status", "execution", *SPEED_HEADER, "perplexity", "flags"]
