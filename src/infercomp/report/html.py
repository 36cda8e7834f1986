"""report.html: one self-contained page to send to a team.

Every figure of report.md (methods, speed and quality, notes), the config that produced them,
one sample text per method, and the charts sized to the page width. Rows whose timings need a
caveat (high cv, a loaded machine) are marked. Nothing is fetched from anywhere.
"""

from __future__ import annotations

import html

from infercomp.report.tables import HEADER, QUALITY_HEADER, notes, quality_rows, run_line, summary_rows
from infercomp.results import Results

# On load, every chart is checked to have drawn something, and the labels of the speed-quality
# scatter not to overlap, and charts to fill the page width; the outcome lands in
# <body data-charts="drawn/total" data-overlaps="N" data-chart-fill="F">, which a headless
# browser test reads.
CHECK_SCRIPT = """
document.addEventListener('DOMContentLoaded', function () {
  var svgs = document.querySelectorAll('figure svg');
  var drawn = 0;
  svgs.forEach(function (s) {
    var b = s.getBBox();
    if (b.width > 0 && b.height > 0 && s.querySelectorAll('path').length > 0) drawn++;
  });
  var boxes = Array.prototype.map.call(document.querySelectorAll('g[id^="label-"]'), function (g) {
    return g.getBoundingClientRect();
  });
  var overlaps = 0;
  for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
    var a = boxes[i], b = boxes[j];
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) overlaps++;
  }
  var fill = 1;  // the narrowest chart's width over the page's content width
  var content = document.body.clientWidth - 2 * parseFloat(getComputedStyle(document.body).paddingLeft);
  svgs.forEach(function (s) { fill = Math.min(fill, s.getBoundingClientRect().width / content); });
  document.body.setAttribute('data-chart-fill', fill.toFixed(2));
  document.body.setAttribute('data-charts', drawn + '/' + svgs.length);
  document.body.setAttribute('data-overlaps', String(overlaps));
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; padding: 0 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td { white-space: nowrap; }
td.l, th.l { text-align: left; }
@media (max-width: 900px) { table { font-size: 12px; } th, td { padding: 3px 5px; } }
tr.flagged td { background: #fff6e0; }
td.flag { color: #8a5a00; text-align: left; }
figure { margin: 1.5em 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
figure svg { width: 100%; height: auto; display: block; }
.note { color: #7a5b1b; }
dl.config { display: grid; grid-template-columns: repeat(auto-fill, 190px minmax(150px, 1fr)); gap: 2px 16px;
             font-size: 14px; }
dl.config dt { font-weight: 600; } dl.config dd { margin: 0; }
.sample { border-left: 3px solid #4c72b0; padding: 4px 10px; margin: .4em 0 1em; background: #f7f9fc;
          white-space: pre-wrap; font-size: 14px; }
.prompt { color: #555; font-style: italic; font-size: 14px; }
h3 { font-size: 1em; margin: 1em 0 .2em; }
"""

LEFT_COLUMNS = {"method", "status", "execution", "flags"}

CONFIG_FIELDS = (
    ("engine", "engine"),
    ("main_model", "main model"),
    ("assistant_model", "assistant model"),
    ("max_new_tokens", "max new tokens"),
    ("num_completions", "completions per prompt"),
    ("batch_size", "batch size"),
    ("temperature", "temperature"),
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("use_speculative_decoding", "speculative variants"),
    ("num_assistant_tokens", "draft tokens"),
    ("draft_source", "draft source"),
    ("cache_implementation", "KV cache"),
    ("use_quantization", "4-bit quantization"),
    ("dtype", "dtype"),
    ("device", "device"),
    ("repeats", "timed repeats"),
    ("warmup_runs", "warm-up calls"),
    ("seed", "seed"),
)


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]], flagged: list[bool] | None = None) -> str:
    cls = lambda h: " class='l'" if h in LEFT_COLUMNS else ""  # noqa: E731
    out = ["<div class='scroll'><table><tr>" + "".join(f"<th{cls(h)}>{_e(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        mark = ""
        if flagged and flagged[i]:  # marked where the row starts too: the flags column may be off-screen
            mark, row = " class='flagged' title='see flags'", ["\u26a0 " + row[0], *row[1:]]
        cells = "".join(
            f"<td class='{'flag' if h == 'flags' else ('l' if h in LEFT_COLUMNS else '')}'>{_e(c)}</td>"
            for h, c in zip(header, row, strict=True)
        )
        out.append(f"<tr{mark}>{cells}</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def config_section(results: Results) -> str:
    cfg = results.config
    items = [(label, cfg[key]) for key, label in CONFIG_FIELDS if key in cfg]
    settings = results.settings
    for key in ("attention", "quantization", "dtype"):
        if key in settings:
            items.append((f"ran with {key}", settings[key]))
    rows = "".join(f"<dt>{_e(label)}</dt><dd>{_e(value)}</dd>" for label, value in items)
    prompts = "".join(f"<li>{_e(p)}</li>" for p in cfg.get("prompts", []))
    return f"<h2>Config</h2><dl class='config'>{rows}</dl><p><b>Prompts</b></p><ol start='0'>{prompts}</ol>"


def samples_section(results: Results) -> str:
    """The first completion of each method that produced one, under its prompt."""
    prompts = results.config.get("prompts", [])
    parts = ["<h2>Sample text per method</h2>"]
    for name, m in results.methods.items():
        if not m.completions:
            continue
        c = m.completions[0]
        prompt = prompts[c.prompt_index] if c.prompt_index < len(prompts) else ""
        parts.append(
            f"<h3>{_e(name)}</h3><div class='prompt'>prompt {c.prompt_index}: {_e(prompt)}</div>"
            f"<div class='sample'>{_e(c.text.strip())}</div>"
        )
    return "\n".join(parts)


def html_report(results: Results) -> str:
    from infercomp.report.charts import CHARTS
    from infercomp.report.flags import method_flags

    title = f"infercomp report: {results.config.get('main_model')}"
    flagged = [bool(method_flags(m)) for m in results.methods.values()]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head><body>",
        f"<h1>{_e(title)}</h1><p>{_e(run_line(results))}</p>",
        "<h2>Methods</h2>",
        _table(HEADER, summary_rows(results), flagged),
    ]
    quality = quality_rows(results)
    if quality:
        parts += ["<h2>Speed and quality (* = Pareto-optimal)</h2>", _table(QUALITY_HEADER, quality)]
    found = notes(results)
    if found:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li class='note'>{_e(n)}</li>" for n in found) + "</ul>")
    parts += [config_section(results), samples_section(results), "<h2>Charts</h2>"]
    for caption, make in CHARTS.items():
        svg = make(results)
        if svg is not None:
            parts.append(f"<figure><figcaption>{_e(caption)}</figcaption>{svg}</figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
