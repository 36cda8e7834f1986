"""The tool around the measurements: reports (checked in headless Chromium), compare, check, the
interactive launcher, run.sh."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infercomp.report.files import write_reports
from infercomp.results import Results

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def cli(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "infercomp.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


@pytest.fixture(scope="module")
def report_dir(greedy_run, tmp_path_factory):
    results, directory = greedy_run
    out = tmp_path_factory.mktemp("report")
    results.save(out)
    write_reports(results, out)
    return out, results


def test_reports_are_written(report_dir):
    out, results = report_dir
    md = (out / "report.md").read_text()
    assert "| method |" in md and "standard" in md
    with (out / "completions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(len(m.completions) for m in results.methods.values())
    html = (out / "report.html").read_text()
    # Self-contained: no script, style sheet, image or font fetched from anywhere.
    for needle in ("<script src", "<link", 'src="http', "url(http", "@import"):
        assert needle not in html
    assert html.count("<svg") >= 4


def _chromium(*args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package 'chromium'; .ci/run installs it)")
@pytest.mark.parametrize("width", [1400, 800])
def test_report_renders_in_headless_chromium(report_dir, width):
    from PIL import Image

    out, results = report_dir
    url = (out / "report.html").as_uri()
    dom = _chromium(f"--window-size={width},3000", "--dump-dom", url)
    body = dom.stdout
    assert 'data-charts="' in body
    drawn, total = body.split('data-charts="')[1].split('"')[0].split("/")
    assert int(total) >= 4 and drawn == total  # every chart's SVG drew paths with a non-empty box
    overlaps = body.split('data-overlaps="')[1].split('"')[0]
    assert overlaps == "0", f"{overlaps} overlapping label pairs in the speed-quality scatter"
    fill = float(body.split('data-chart-fill="')[1].split('"')[0])
    assert fill >= 0.9, f"the narrowest chart fills {fill:.0%} of the page width"
    # Chromium logs page errors and console output as "...:CONSOLE(line)] message".
    console = [line for line in dom.stderr.splitlines() if "Uncaught" in line or "CONSOLE(" in line.upper()]
    assert not console, console
    # What an engineer sends: the quality table, the config, a sample text per method, the notes.
    for needle in ("Speed and quality", "self-BLEU", "<h2>Config</h2>", "max new tokens", "Sample text per method"):
        assert needle in body, needle
    for name, m in results.methods.items():
        if m.completions:
            assert f"<h3>{name}</h3>" in body
    assert "beam_search_speculative: not applicable" in body  # a report.md note
    shot = out / f"shot-{width}.png"
    _chromium(f"--window-size={width},6000", "--hide-scrollbars", f"--screenshot={shot}", url)
    image = Image.open(shot).convert("L")
    assert image.width == width
    dark = sum(image.histogram()[:200])
    assert dark > 0.02 * image.width * image.height  # text and charts, not a blank page


def test_compare_two_runs(report_dir, tmp_path):
    out, results = report_dir
    other = tmp_path / "other"
    slower = results.model_copy(deep=True)
    slower.methods["standard"].summary.tokens_per_second /= 2
    slower.save(other)
    proc = cli("compare", str(out), str(other), "--markdown")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| standard |"))
    assert row.rstrip(" |").endswith("0.50x")
    bad = cli("compare", str(out), str(tmp_path / "missing"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_report_command_and_check(report_dir, tmp_path):
    out, _ = report_dir
    proc = cli("report", str(out))
    assert proc.returncode == 0 and "report.html" in proc.stdout
    ok = cli("check", "example", "--embedded")
    assert ok.returncode == 0 and "can run here" in ok.stdout
    missing = cli("check", "example", "--set", f"main_model={tmp_path / 'nothing'}")
    assert missing.returncode == 1 and "missing" in missing.stdout


class ScriptedAsker:
    """Feeds each question its keystrokes through a prompt_toolkit pipe: the real questionary
    prompts run, as on a terminal."""

    def __init__(self, keys: list[str]):
        from infercomp.launch import Asker

        self.keys = list(keys)
        self.asker = Asker()
        self.asker.io = self._io
        self.pipes = []

    def _io(self):
        from prompt_toolkit.input import create_pipe_input
        from prompt_toolkit.output import DummyOutput

        ctx = create_pipe_input()
        pipe = ctx.__enter__()
        self.pipes.append(ctx)
        pipe.send_text(self.keys.pop(0))
        return {"input": pipe, "output": DummyOutput()}


CLEAR = "\x15"  # Ctrl-U: clear the pre-filled default
DOWN, ENTER = "\x1b[B", "\r"


@pytest.mark.slow
def test_launcher_from_start_to_a_finished_run(tmp_path, monkeypatch):
    from rich.console import Console

    from infercomp.launch import launch

    monkeypatch.chdir(tmp_path)
    keys = [
        DOWN * 3 + ENTER,  # start from: build a config step by step
        ENTER,  # main model: embedded:main
        ENTER,  # assistant: embedded:assistant
        CLEAR + "Once upon a time | generate short bed time story containing word dog and sausage" + ENTER,
        CLEAR + "2,1" + ENTER,  # completions per prompt
        CLEAR + "0" + ENTER + CLEAR + "2" + ENTER,  # batch size: 0 is refused as given, then 2
        CLEAR + "8" + ENTER,  # max new tokens
        CLEAR + "0" + ENTER,  # temperature
        ENTER,  # methods: the four base methods, as pre-checked
        "y",  # speculative variants too
        "n",  # quantization
        ENTER,  # cache: dynamic
        CLEAR + "1" + ENTER,  # repeats
        ENTER,  # results folder: results
        ENTER,  # next: save and run
        CLEAR + "my-config.json" + ENTER,
    ]
    scripted = ScriptedAsker(keys)
    shown = io.StringIO()
    path = launch(scripted.asker, Console(file=shown, width=120))
    assert path == Path("my-config.json") and not scripted.keys
    text = shown.getvalue()
    assert "methods    standard, standard_speculative" in text and "{" not in text  # a review, not JSON
    assert "results: results/results.json" in text  # where the results went
    saved = json.loads(path.read_text())
    assert saved["prompts"][1].endswith("dog and sausage") and saved["num_completions"] == [2, 1]
    assert saved["use_speculative_decoding"] is True
    results = Results.load(tmp_path / "results")
    assert list(results.methods) == [
        "standard",
        "standard_speculative",
        "batched",
        "batched_speculative",
        "beam_search",
        "beam_search_speculative",
        "nucleus_sampling",
        "nucleus_sampling_speculative",
    ]
    assert all(m.status == "ok" for m in results.methods.values())
    assert (tmp_path / "results" / "report.html").exists()


def test_run_sh_lists_its_commands():
    proc = subprocess.run(["bash", str(REPO / "run.sh"), "help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for word in ("quick", "example", "comprehensive", "check", "launch", "test"):
        assert word in proc.stdout


def test_launcher_runs_without_saving_and_never_overwrites_silently(tmp_path, monkeypatch):
    from rich.console import Console

    import infercomp.launch as launcher

    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr(launcher, "run_config", lambda config, console: ran.append(config.output_dir))
    quiet = Console(file=io.StringIO())
    keys = [ENTER, ENTER, DOWN + ENTER]  # preset quick, embedded pair, run without saving
    assert launcher.launch(ScriptedAsker(keys).asker, quiet) is None
    assert ran == ["results"] and not list(tmp_path.glob("*.json"))
    (tmp_path / "mine.json").write_text("{}")
    keys = [ENTER, ENTER, DOWN * 2 + ENTER, CLEAR + "mine.json" + ENTER, "n", ENTER]  # save only; keep mine.json
    path = launcher.launch(ScriptedAsker(keys).asker, quiet)
    assert path == Path("mine-2.json") and (tmp_path / "mine.json").read_text() == "{}"
    assert json.loads(path.read_text())["main_model"] == "embedded:main"
