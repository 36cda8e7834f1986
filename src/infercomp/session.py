"""A run as the command line and the launcher start it: checks, progress bars, reports, and what
an interruption kept.

Exit codes (documented in the README):
    0    every method ran (ok or skipped with a stated reason)
    1    the run finished but at least one method failed (its reason is in the table)
    2    bad input: config, model, output folder, options (one line on stderr)
    130  interrupted by SIGINT (Ctrl-C); 143: by SIGTERM. Finished calls are kept; resume with
         `infercomp run --resume DIR`.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

EXIT_OK, EXIT_METHOD_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGNAL = {2: 130, 15: 143}


def interrupted_exit_code() -> int:
    from infercomp.process import interrupt_signal

    return EXIT_SIGNAL.get(interrupt_signal(), 130)


def kept_after_interrupt(directory: str | Path, since: float = 0.0) -> list[str]:
    """Lines saying what an interrupted run (started at time `since`) left in `directory`, and
    how to resume it."""
    from infercomp.checkpoint import Checkpoint
    from infercomp.results import Results

    d = Path(directory)
    if not (d / "results.json").exists() or (d / "results.json").stat().st_mtime < since:
        return [f"nothing of this run was saved in {d} yet (it stopped before the first method started)"]
    try:
        results = Results.load(d)
    except (OSError, ValueError):
        return [f"{d}/results.json could not be read back"]
    done = [n for n in results.methods]
    calls = Checkpoint(d).saved
    by_method: dict[str, int] = {}
    for method, _, _ in calls:
        by_method[method] = by_method.get(method, 0) + 1
    kept = f"kept in {d}: {len(done)} finished method(s)" + (f" ({', '.join(done)})" if done else "")
    if by_method:
        kept += "; saved calls of " + ", ".join(f"{m} ({n})" for m, n in by_method.items())
    return [kept, f"resume with: infercomp run --resume {shlex.quote(str(d))}"]


def exit_code(results) -> int:
    return EXIT_METHOD_FAILED if any(m.status == "failed" for m in results.methods.values()) else EXIT_OK


def run_with_progress(config, directory: str, err, quiet: bool = False, resume: bool = False):
    """Preflight, then the run with one progress bar per method on `err`. Returns the results;
    raises KeyboardInterrupt (after the caller's cleanup) when interrupted."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from infercomp.lockfile import check_output_folder
    from infercomp.preflight import preflight
    from infercomp.process import import_libraries
    from infercomp.runner import run_experiment

    import_libraries()
    preflight(config)
    check_output_folder(directory)  # refused in one line before the progress display starts
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(method: str, done: int, total: int) -> None:
            if method not in tasks:
                tasks[method] = bar.add_task(method, total=total)
            bar.update(tasks[method], completed=done)

        return run_experiment(config, directory, progress=progress, resume=resume)


def finish(results, directory: str, out) -> int:
    """Print the table, write the report files, say where everything went; the exit code."""
    from infercomp.report.console import print_results
    from infercomp.report.files import write_reports

    print_results(results, out)
    write_reports(results, directory)
    out.print(
        f"results: {os.path.join(directory, 'results.json')} (report.md, report.html, completions.csv beside it)",
        highlight=False,
    )
    failed = [n for n, m in results.methods.items() if m.status == "failed"]
    if failed:
        out.print(f"failed: {', '.join(failed)} (reasons in the table and report.md)", highlight=False)
    return exit_code(results)
