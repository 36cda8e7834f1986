"""The `infercomp` command line: each subcommand parses, calls one library function, prints.

Examples:
    infercomp run                                  # quick preset on the embedded pair, offline
    infercomp run example --embedded               # a preset, on the embedded pair
    infercomp run my.json --set batch_size=8 --output-dir out
    infercomp plan configs/config_example.json --json
    infercomp methods
    infercomp models --path embedded:main
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Annotated

# Before torch is imported anywhere: OpenMP's default busy-waiting makes CPU timings swing
# several-fold when another process shares the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from infercomp.config import ConfigError, load_config  # noqa: E402

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Run LLM inference methods side by side and measure them.",
)
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def one_line_errors(fn):
    """Known user errors become one line on stderr and exit code 2, never a traceback; an
    interrupt exits 130 (SIGINT) or 143 (SIGTERM). Exit codes: see infercomp.session."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from infercomp.errors import SettingError
        from infercomp.models import ModelLoadError
        from infercomp.session import EXIT_BAD_INPUT, interrupted_exit_code

        try:
            return fn(*args, **kwargs)
        except (ConfigError, ModelLoadError, SettingError) as exc:
            err.print(f"infercomp: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            err.print("infercomp: interrupted", markup=False, highlight=False)
            raise typer.Exit(interrupted_exit_code()) from None

    return wrapper


ConfigArg = Annotated[str | None, typer.Argument(help="config JSON file, or a preset: quick, example, comprehensive")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a field: key=value (value read as JSON)")]
EmbeddedOpt = Annotated[bool, typer.Option("--embedded", help="use the embedded offline pair as main and assistant")]


@app.command()
@one_line_errors
def run(
    config: ConfigArg = None,
    set_: SetOpt = None,
    embedded: EmbeddedOpt = False,
    output_dir: Annotated[str | None, typer.Option(help="where results.json goes")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="finish an interrupted run in DIR: run only missing methods")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
) -> None:
    """Run the methods of a config and write DIR/results.json. No config: quick preset, embedded pair.

    With --resume DIR and no config, the config stored in DIR/results.json is used.
    Exit codes: 0 all methods ran, 1 some failed, 2 bad input, 130/143 interrupted."""
    from infercomp.session import finish, interrupted_exit_code, kept_after_interrupt, run_with_progress

    if resume and config is None and not set_ and not embedded:
        cfg = stored_config(resume)
    else:
        cfg = load_config(config, set_, embedded=embedded)
    quiet_transformers()
    directory = resume or output_dir or cfg.output_dir
    if cfg.tensor_parallel_size > 1:  # the ranks run in their own processes; rank 0 writes the files
        from infercomp.distributed.launch import run_from_cli

        raise typer.Exit(run_from_cli(cfg, directory, resume is not None, out, err))
    started = time.time()
    try:
        results = run_with_progress(cfg, directory, err, quiet=quiet, resume=resume is not None)
    except KeyboardInterrupt:
        err.print("infercomp: interrupted", markup=False, highlight=False)
        for line in kept_after_interrupt(directory, since=started - 1):
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(interrupted_exit_code()) from None
    raise typer.Exit(finish(results, directory, out))


@app.command()
@one_line_errors
def plan(
    config: ConfigArg = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
) -> None:
    """Show the generate calls each method makes (prompt indices per call); loads no model."""
    from infercomp.plan import make_plan, plan_as_dict

    plans = make_plan(load_config(config, set_))
    if as_json:
        print(json.dumps(plan_as_dict(plans)))
        return
    for p in plans:
        out.print(f"{p.method}: {len(p.batches)} calls {p.batches}", highlight=False)


def stored_config(directory: str):
    from pathlib import Path

    from infercomp.config import ConfigError, validate_config

    path = Path(directory) / "results.json"
    if not path.is_file():
        raise ConfigError(f"resume: {path} not found")
    try:
        return validate_config(json.loads(path.read_text(encoding="utf-8"))["config"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"resume: {path} is not an infercomp results file") from None


@app.command()
@one_line_errors
def maxbatch(
    config: ConfigArg = None,
    method: Annotated[str, typer.Option("--method", help="a batched method, e.g. batched")] = "batched",
    set_: SetOpt = None,
    embedded: EmbeddedOpt = False,
    limit: Annotated[int, typer.Option(min=1, help="largest batch size to try (>= 1)")] = 256,
    probe_tokens: Annotated[
        int | None,
        typer.Option(help="fast engine: probe with prompts cut to this many tokens (cache sized for the full ones)"),
    ] = None,
) -> None:
    """Find the largest batch size METHOD runs at without running out of memory (one line per
    probe on stderr as it finishes)."""
    from infercomp.maxbatch import find_max_batch
    from infercomp.methods import method_names
    from infercomp.preflight import preflight

    if method not in method_names():
        raise ConfigError(f"maxbatch: unknown method {method!r}; allowed: {', '.join(method_names())}")
    cfg = load_config(config, set_, embedded=embedded)
    preflight(cfg, need_assistant=method.endswith("_speculative"))
    quiet_transformers()
    found = find_max_batch(cfg, method, limit, probe_tokens)
    for n, ok in found["trials"] + found["full_prompt_trials"]:
        out.print(f"batch {n:5d}: {'fits' if ok else 'out of memory'}", highlight=False)
    if found["note"]:
        out.print(f"note: {found['note']}", highlight=False)
    print(json.dumps({k: v for k, v in found.items() if k != "trials"}))


@app.command()
@one_line_errors
def report(directory: Annotated[str, typer.Argument(help="a run folder holding results.json")]) -> None:
    """Write DIR/report.md, a self-contained DIR/report.html with charts, and DIR/completions.csv."""
    from infercomp.report.files import write_reports

    for path in write_reports(load_results(directory), directory):
        print(path)


@app.command()
@one_line_errors
def compare(
    directories: Annotated[list[str], typer.Argument(help="two or more run folders")],
    markdown: Annotated[bool, typer.Option("--markdown", help="print Markdown instead of a table")] = False,
    force: Annotated[bool, typer.Option("--force", help="show ratios even across different workloads")] = False,
) -> None:
    """Runs side by side: tokens/s per method and the ratio to the first run.

    Refuses runs of different workloads (models, prompts, lengths, sampling) unless --force;
    names runs that are incomplete."""
    from infercomp.report.compare import comparison_markdown, comparison_table, workload_differences

    runs = [(d.rstrip("/").split("/")[-1], load_results(d)) for d in directories]
    diffs = workload_differences(runs)
    if diffs and not force:
        raise ConfigError(
            f"compare: the runs measured different workloads ({'; '.join(diffs)}); "
            "their ratios would mislead; pass --force to compare anyway"
        )
    if markdown:
        print(comparison_markdown(runs), end="")
    else:
        out.print(comparison_table(runs))


@app.command()
@one_line_errors
def check(config: ConfigArg = None, set_: SetOpt = None, embedded: EmbeddedOpt = False) -> None:
    """Check packages, devices and the config's models (no download); exit 0 if it can run here."""
    from rich.markup import escape
    from rich.table import Table

    from infercomp.check import run_checks

    rows, can_run = run_checks(load_config(config, set_, embedded=embedded))
    table = Table(title="infercomp check")
    for col in ("item", "status", "detail", "how to fix"):
        table.add_column(col)
    colors = {"ok": "green", "missing": "red", "warning": "yellow"}
    for r in rows:
        table.add_row(escape(r.item), f"[{colors[r.status]}]{r.status}[/]", escape(r.detail), escape(r.fix))
    out.print(table)
    out.print("this config can run here" if can_run else "this config cannot run here: see 'missing' rows")
    raise typer.Exit(0 if can_run else 1)


@app.command()
@one_line_errors
def launch() -> None:
    """Interactive launcher: choose a preset or build a config, review, save and/or run."""
    from infercomp.launch import Asker
    from infercomp.launch import launch as run_launcher

    quiet_transformers()
    run_launcher(Asker(), out)
    raise typer.Exit(run_launcher.exit_code)


def load_results(directory: str):
    from pathlib import Path

    from infercomp.results import Results

    path = Path(directory) / "results.json"
    if not path.exists():
        raise ConfigError(f"no results.json in {directory!r}")
    try:
        return Results.load(path)
    except ValueError as exc:
        raise ConfigError(f"{path} is not an infercomp results file: {str(exc).splitlines()[0]}") from None


@app.command()
def methods() -> None:
    """List the methods, one line each."""
    from infercomp.methods import all_methods

    for m in all_methods():
        print(f"{m.name:32s} {m.summary}")


@app.command()
@one_line_errors
def models(
    path: Annotated[str | None, typer.Option("--path", help="print the local folder of this model")] = None,
) -> None:
    """List the model names infercomp knows; --path NAME prints where one lives."""
    from infercomp.models import known_models, local_folder

    if path:
        print(local_folder(path))
        return
    for m in known_models():
        print(f"{m.name:26s} {m.kind:13s} {m.description}")


def quiet_transformers() -> None:
    """Our own progress bar replaces transformers' per-model loading bars."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def main() -> None:
    from infercomp.process import exit_at_once, install_interrupt_handlers, interrupt_signal

    # SIGTERM (a scheduler's stop, `kill`) ends a run like Ctrl-C: finished methods stay saved.
    install_interrupt_handlers()
    try:  # typer >= 0.26 carries its own copy of click
        from typer._click import exceptions as click
    except ImportError:
        import click

    from infercomp.session import EXIT_BAD_INPUT, interrupted_exit_code

    try:
        code = app(standalone_mode=False)
    except click.UsageError as exc:  # a bad option or argument: one line, like a config error
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()
            sys.exit(exc.exit_code)
        where = f"infercomp {exc.ctx.info_name}" if exc.ctx and exc.ctx.info_name != "infercomp" else "infercomp"
        err.print(
            f"infercomp: {exc.format_message()} (see: {where} --help)", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):  # the class this typer raises (its click's, or its own)
        err.print("infercomp: interrupted")
        code = interrupted_exit_code()
    except Exception:
        if not interrupt_signal():
            raise
        # a library turned the interrupt into an error of its own: still an interrupt
        err.print("infercomp: interrupted")
        code = interrupted_exit_code()
    code = code if isinstance(code, int) else 0
    if interrupt_signal():  # see exit_at_once: a normal shutdown could turn 143 into -2 or -6
        # typer ends a command that does not handle the interrupt itself with 130, whichever
        # signal it was: SIGTERM's is 143
        exit_at_once(interrupted_exit_code() if code == 130 else code)
    sys.exit(code)


if __name__ == "__main__":
    main()
