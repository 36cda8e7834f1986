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

    def text(self, message: str, default: str = "", validate=None) -> str:
        import questionary

        return self._ask(questionary.text(message, default=default, validate=validate, **self.io()))

    def confirm(self, message: str, default: bool = False) -> bool:
        import questionary

        return self._ask(questionary.confirm(message, default=default, **self.io()))

    def checkbox(self, message: str, choices: list[str], checked: list[str]) -> list[str]:
        import questionary

        items = [questionary.Choice(c, checked=c in checked) for c in choices]
        return self._ask(questionary.checkbox(message, choices=items, **self.io()))


def answer_check(data: dict[str, Any], key: str, parse):
    """A questionary validator for one answer: parse the text, then validate the config with
    that value in place, so a wrong answer is refused as it is given with the config's own
    message (True, or the message to show)."""

    def check(text: str):
        try:
            value = parse(text)
        except (ValueError, TypeError):
            return f"{key}: could not read {text!r}"
        try:
            validate_config({**data, key: value})
        except ConfigError as exc:
            return str(exc).removeprefix("config error: ")
        return True

    return check


def _prompts(text: str) -> list[str]:
    return [p.strip() for p in text.split("|") if p.strip()]


def _counts(text: str) -> int | list[int]:
    numbers = [int(c) for c in text.replace(" ", "").split(",") if c]
    if not numbers:
        raise ValueError("no number")
    return numbers[0] if len(numbers) == 1 else numbers


def build_config(ask: Asker) -> dict[str, Any]:
    """Ask for every part of a config, each answer checked as it is given; returns a valid dict."""
    data: dict[str, Any] = {}

    def text(key: str, message: str, default: str, parse=str) -> None:
        answer = ask.text(message, default, validate=answer_check(data, key, parse))
        data[key] = parse(answer)

    text("main_model", "Main model (hub id, folder, embedded:main):", "embedded:main")
    text("assistant_model", "Assistant model (draft model):", "embedded:assistant")
    text(
        "prompts",
        "Prompts, separated by ' | ':",
        "generate short bed time story containing word elephant and cake",
        _prompts,
    )
    text("num_completions", "Completions per prompt (one number, or one per prompt separated by commas):", "2", _counts)
    text("batch_size", "Batch size:", "4", int)
    text("max_new_tokens", "Max new tokens:", "50", int)
    text("temperature", "Temperature (0 = greedy):", "0.7", float)
    data["methods_to_test"] = ask.checkbox("Methods:", method_names(), checked=list(BASE_METHODS)) or None
    data["use_speculative_decoding"] = ask.confirm("Also run each method's speculative variant?", False)
    data["use_quantization"] = ask.confirm("4-bit quantization?", False)
    data["cache_implementation"] = ask.select("KV cache:", ["dynamic", "static", "offloaded", "quantized"], "dynamic")
    text("repeats", "Timed repeats per method:", "3", int)
    text("output_dir", "Results folder:", "results")
    return data


def review(config) -> list[str]:
    """A short review of what will run, in place of the whole config."""
    prompts = config.prompts
    first = prompts[0] if len(prompts[0]) <= 60 else prompts[0][:57] + "..."
    counts = config.completions_per_prompt()
    lines = [
        f"models     {config.main_model}"
        + (f" (assistant {config.assistant_model})" if config.assistant_model else ""),
        f"prompts    {len(prompts)}: {first!r}" + (" ..." if len(prompts) > 1 else ""),
        f"work       {sum(counts)} completions of up to {config.max_new_tokens} tokens, batch {config.batch_size}, "
        f"temperature {config.temperature}",
        f"methods    {', '.join(config.selected_methods())}",
        f"timing     {config.warmup_runs} warm-up, {config.repeats} timed repeats; device {config.device}",
        f"results    {config.output_dir}/",
    ]
    engine = getattr(config, "engine", None)
    if engine is not None:
        lines.insert(3, f"engine     {engine}")
    return lines


ACTIONS = ("save and run", "run without saving", "save only", "quit")


def save_config(ask: Asker, config, console) -> Path:
    """Ask where to save; never overwrite silently, and keep asking until it is written."""
    default = "infercomp-config.json"
    while True:
        path = Path(ask.text("Save as:", default))
        if path.exists() and not ask.confirm(f"{path} exists. Overwrite it?", False):
            default = f"{path.stem}-2{path.suffix or '.json'}"
            continue
        try:
            path.write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
        except OSError as exc:
            console.print(f"[red]could not write {path}: {exc.strerror}[/]")
            continue
        console.print(f"saved {path}")
        return path


def launch(ask: Asker, console, run=True) -> Path | None:
    """The whole flow; returns the saved config's path (None if it was not saved). The run's
    exit code (see infercomp.session) is kept in `launch.exit_code`."""
    launch.exit_code = 0
    from infercomp.config import preset_path

    start = ask.select("Start from:", [f"preset: {p}" for p in PRESETS] + ["build a config step by step"])
    if start.startswith("preset: "):
        data = read_config_file(preset_path(start.removeprefix("preset: ")))
        if ask.confirm("Use the embedded offline model pair instead of the preset's models?", True):
            data.update(main_model="embedded:main", assistant_model="embedded:assistant")
    else:
        data = build_config(ask)
    config = validate_config(data)  # every answer was validated as given
    for line in review(config):
        console.print(line, highlight=False, markup=False)
    action = ask.select("Next:", list(ACTIONS) if run else ["save only", "quit"], ACTIONS[0] if run else "save only")
    path = save_config(ask, config, console) if action in ("save and run", "save only") else None
    if action in ("save and run", "run without saving"):
        launch.exit_code = run_config(config, console)
    return path


def run_config(config, console) -> int:
    """Run with progress bars; say where the results went (or what an interrupt kept)."""
    import time

    from infercomp.session import finish, kept_after_interrupt, run_with_progress

    started = time.time()
    try:
        results = run_with_progress(config, config.output_dir, console)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    except KeyboardInterrupt:
        for line in ["interrupted", *kept_after_interrupt(config.output_dir, since=started - 1)]:
            console.print(line, highlight=False, markup=False)
        raise
    return finish(results, config.output_dir, console)
