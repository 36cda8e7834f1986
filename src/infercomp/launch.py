"""The interactive launcher: pick a preset or build a config step by step, review, save, run.

Built on questionary. `ask` is the one place questions are asked, so tests can drive the whole
flow through prompt_toolkit's pipe input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infercomp.config import PRESETS, ConfigError, read_config_file, validate_config
from infercomp.methods import BASE_METHODS, method_names


class Asker:
    """Questions through questionary, on the terminal; a subclass may hand each question its own
    prompt_toolkit input and output (`io`), which is how the tests drive the launcher."""

    def io(self) -> dict:
        return {}

    @staticmethod
    def _ask(question):
        return question.unsafe_ask()  # unsafe: Ctrl-C raises instead of returning None

    def select(self, message: str, choices: list[str], default: str | None = None) -> str:
        import questionary

        return self._ask(questionary.select(message, choices=choices, default=default, **self.io()))

    def text(self, message: str, default: str = "") -> str:
        import questionary

        return self._ask(questionary.text(message, default=default, **self.io()))

    def confirm(self, message: str, default: bool = False) -> bool:
        import questionary

        return self._ask(questionary.confirm(message, default=default, **self.io()))

    def checkbox(self, message: str, choices: list[str], checked: list[str]) -> list[str]:
        import questionary

        items = [questionary.Choice(c, checked=c in checked) for c in choices]
        return self._ask(questionary.checkbox(message, choices=items, **self.io()))


def build_config(ask: Asker) -> dict[str, Any]:
    """Ask for every part of a config; returns the raw dict (validated by the caller)."""
    data: dict[str, Any] = {}
    data["main_model"] = ask.text("Main model (hub id, folder, embedded:main):", "embedded:main")
    data["assistant_model"] = ask.text("Assistant model (draft model):", "embedded:assistant")
    prompts = ask.text(
        "Prompts, separated by ' | ':", "generate short bed time story containing word elephant and cake"
    )
    data["prompts"] = [p.strip() for p in prompts.split("|") if p.strip()]
    counts = ask.text("Completions per prompt (one number, or one per prompt separated by commas):", "2")
    numbers = [int(c) for c in counts.replace(" ", "").split(",") if c]
    data["num_completions"] = numbers[0] if len(numbers) == 1 else numbers
    data["batch_size"] = int(ask.text("Batch size:", "4"))
    data["max_new_tokens"] = int(ask.text("Max new tokens:", "50"))
    data["temperature"] = float(ask.text("Temperature (0 = greedy):", "0.7"))
    data["methods_to_test"] = ask.checkbox("Methods:", method_names(), checked=list(BASE_METHODS))
    data["use_speculative_decoding"] = ask.confirm("Also run each method's speculative variant?", False)
    data["use_quantization"] = ask.confirm("4-bit quantization?", False)
    data["cache_implementation"] = ask.select("KV cache:", ["dynamic", "static", "offloaded", "quantized"], "dynamic")
    data["repeats"] = int(ask.text("Timed repeats per method:", "3"))
    return data


def launch(ask: Asker, console, run=True) -> Path | None:
    """The whole flow; returns the saved config's path (None if the user stopped)."""
    from infercomp.config import preset_path

    start = ask.select("Start from:", [f"preset: {p}" for p in PRESETS] + ["build a config step by step"])
    if start.startswith("preset: "):
        data = read_config_file(preset_path(start.removeprefix("preset: ")))
        if ask.confirm("Use the embedded offline model pair instead of the preset's models?", True):
            data.update(main_model="embedded:main", assistant_model="embedded:assistant")
    else:
        data = build_config(ask)
    try:
        config = validate_config(data)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/]")
        return None
    console.print_json(json.dumps(config.model_dump(mode="json")))
    if not ask.confirm("Save this config?", True):
        return None
    path = Path(ask.text("Save as:", "infercomp-config.json"))
    path.write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    console.print(f"saved {path}")
    if run and ask.confirm("Run it now?", True):
        from infercomp.report.console import print_results
        from infercomp.report.files import write_reports
        from infercomp.runner import run_experiment

        results = run_experiment(config)
        write_reports(results, config.output_dir)
        print_results(results, console)
    return path
