"""A method added from outside the package (tests/toy_method.py plus one registration) shows up
in `infercomp methods`, the plan, a run on each engine and the report, without touching the
engines, the runner or the reports."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infercomp.config import load_config
from infercomp.methods.registry import register, unregister
from infercomp.report.files import write_reports
from infercomp.runner import run_experiment

NAME = "greedy_repetition_penalty"


@pytest.fixture
def toy():
    import toy_method

    register(toy_method.METHOD)  # the one registration
    yield toy_method
    unregister(NAME)


def config(engine: str):
    overrides = {
        "methods_to_test": ["standard", NAME],
        "engine": engine,
        "max_new_tokens": 24,
        "repeats": 1,
        "num_completions": 1,
        "temperature": 0.0,
    }
    return load_config("quick", overrides, embedded=True)


def test_the_toy_method_is_listed_and_planned(toy):
    from infercomp.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["methods"])
    assert listed.exit_code == 0 and NAME in listed.output
    planned = runner.invoke(app, ["plan", "quick", "--json", "--set", f'methods_to_test=["{NAME}"]'])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.output)["methods"][NAME]["batches"] == [[0, 0, 1, 1]]


def test_the_toy_method_runs_on_the_reference_engine_and_is_reported(toy, tmp_path):
    results = run_experiment(config("transformers"), tmp_path)
    toy_result, standard = results.methods[NAME], results.methods["standard"]
    assert toy_result.status == "ok", toy_result.reason
    assert toy_result.generation == {"do_sample": False, "repetition_penalty": toy.PENALTY}
    assert toy_result.summary.new_tokens > 0
    # The penalty really reached generate(): greedy text changes where plain greedy repeats itself.
    texts = lambda m: [c.text for c in m.completions]  # noqa: E731
    assert texts(toy_result) != texts(standard)
    write_reports(results, tmp_path)
    assert f"| {NAME} | ok |" in (tmp_path / "report.md").read_text()


def test_the_fast_engine_refuses_the_toy_method_with_its_reason(toy, tmp_path):
    results = run_experiment(config("fast").model_copy(update={"methods_to_test": [NAME]}), tmp_path)
    assert results.settings["engine"] == "fast", results.settings.get("notes")
    toy_result = results.methods[NAME]
    reason = "the fast engine does not implement the generation setting(s) repetition_penalty"
    assert toy_result.status == "skipped" and toy_result.reason.startswith(reason), toy_result.reason
    write_reports(results, tmp_path)
    assert f"{NAME}: {reason}" in (tmp_path / "report.md").read_text()
