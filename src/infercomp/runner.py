"""The run: config -> plan -> engine -> each method's calls, measured -> results on disk.

Each method is warmed up, then timed over `repeats` passes of all its planned calls. A method
that raises (or runs out of memory) is recorded `failed` with its reason and the rest continue.
With isolation 'process' (the default on GPU) each method runs in a fresh Python process, so state
one method leaves behind (allocator caches, compiled graphs, mutated generation configs) cannot
touch the next. The output folder is locked for the run (lockfile.py); results.json is saved at
the start and after every method, and each finished timed call at once (checkpoint.py), so
`resume=True` keeps finished methods and continues a method in progress without running any of
its saved calls again.

This module orchestrates; `collect.py` gathers each method's raw samples, `figures.py` derives
the reported figures from them, `process.py` holds the process settings (signals, threads).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from infercomp.collect import MethodRun, Progress
from infercomp.config import Config, ConfigError
from infercomp.environment import capture_environment
from infercomp.figures import annotate_measured_speedups, annotate_pareto, annotate_speedups, method_result
from infercomp.methods import get_method
from infercomp.plan import MethodPlan, make_plan
from infercomp.process import configure_threads, isolation_mode
from infercomp.results import MethodResult, Results

__all__ = ["finalize", "load_for_resume", "run_experiment", "run_one_method"]


def run_experiment(
    config: Config, output_dir: str | Path | None = None, progress: Progress | None = None, resume: bool = False
) -> Results:
    """Run every selected method of `config`; save as calls finish; return the results.

    The output folder is locked for the run (a second run into it refuses). results.json is
    written at the start and after each method; each finished timed call goes to
    checkpoint.jsonl at once. With `resume`, the methods results.json holds are kept, and a
    method in progress continues from its saved calls (its config must match, apart from the
    output folder).
    """
    from infercomp.lockfile import OutputLock

    out_dir = Path(output_dir if output_dir is not None else config.output_dir)
    with OutputLock(out_dir):
        return _run_locked(config, out_dir, progress, resume)


def _run_locked(config: Config, out_dir: Path, progress: Progress | None, resume: bool) -> Results:
    from infercomp.checkpoint import Checkpoint

    plans = make_plan(config)
    results = load_for_resume(config, out_dir) if resume else None
    checkpoint = Checkpoint(out_dir)
    if results is None:
        checkpoint.remove()  # saved calls of some other run: never mix them in
        results = Results(config=config.model_dump(mode="json"))
    todo = [p for p in plans if p.method not in results.methods]
    results.incomplete = [p.method for p in todo]
    results.save(out_dir)  # from the start, so --resume has the config even if no method finished
    if todo:
        if isolation_mode(config) == "process":
            _run_isolated(config, todo, results, out_dir, progress, checkpoint)
        else:
            _run_in_process(config, todo, results, out_dir, progress, checkpoint)
    finalize(results, config, plans)
    results.save(out_dir)
    checkpoint.remove()
    return results


def finalize(results: Results, config: Config, plans: list[MethodPlan]) -> None:
    """Methods in plan order, then the figures that compare methods (speedups, Pareto front)."""
    results.methods = {p.method: results.methods[p.method] for p in plans if p.method in results.methods}
    annotate_speedups(results, config.baseline_method)
    annotate_pareto(results)
    annotate_measured_speedups(results)
    results.incomplete = []


def load_for_resume(config: Config, out_dir: Path) -> Results | None:
    if not (out_dir / "results.json").exists():
        return None
    previous = Results.load(out_dir)
    mine = config.model_dump(mode="json")
    theirs = dict(previous.config)
    mine.pop("output_dir"), theirs.pop("output_dir", None)
    if mine != theirs:
        changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise ConfigError(
            f"resume: the config differs from the one in {out_dir}/results.json (fields: {', '.join(changed)})"
        )
    return previous


def _finish_method(results: Results, name: str, record: MethodResult, out_dir: Path, checkpoint) -> None:
    results.methods[name] = record
    if name in results.incomplete:
        results.incomplete.remove(name)
    results.save(out_dir)
    checkpoint.forget(name)  # results.json holds its calls now


def _run_in_process(
    config: Config, todo: list[MethodPlan], results: Results, out_dir: Path, progress, checkpoint
) -> None:
    from infercomp.loader import load_engine
    from infercomp.measure.bandwidth import measure_bandwidth_gbs
    from infercomp.measure.load import OtherLoad

    configure_threads(config)
    need_assistant = config.draft_source == "assistant" and any(p.method.endswith("_speculative") for p in todo)
    if progress:
        progress("loading models", 0, 1)
    engine = load_engine(config, need_assistant)
    if progress:
        progress("loading models", 1, 1)
    if not results.environment:
        results.settings = engine.settings.as_record()
        results.models = engine.describe_models()
        results.environment = capture_environment(engine.settings.device)
        results.environment["memory_bandwidth_gbs"] = measure_bandwidth_gbs(engine.settings.device)
    bandwidth = results.environment.get("memory_bandwidth_gbs")
    runs = [MethodRun(engine, get_method(p.method), p, bandwidth, call_hook=checkpoint.hook(p.method)) for p in todo]
    if config.interleave:
        # A B C A B C ...: slow drift (thermal, other load) spreads over all methods alike.
        with OtherLoad() as load:
            for run in runs:
                run.warm_up()
            for repeat in range(config.repeats):
                for run in runs:
                    run.measure_repeat(repeat, progress)
        results.settings["compile"] = engine.settings.compile  # the fast engine's record grows per shape
        for run in runs:
            record = method_result(run).model_copy(update={"cpu_load": load.record()})
            _finish_method(results, run.method.name, record, out_dir, checkpoint)
        return
    for run in runs:
        with OtherLoad() as load:
            run.warm_up()
            for repeat in range(config.repeats):
                run.measure_repeat(repeat, progress)
        record = method_result(run).model_copy(update={"cpu_load": load.record()})
        results.settings["compile"] = engine.settings.compile  # the fast engine's record grows per shape
        _finish_method(results, run.method.name, record, out_dir, checkpoint)


def _run_isolated(
    config: Config, todo: list[MethodPlan], results: Results, out_dir: Path, progress, checkpoint
) -> None:
    """One fresh process per method; a crash (even a segfault) is recorded as that method's failure."""
    with tempfile.TemporaryDirectory(prefix="infercomp-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(config.model_dump_json())
        for plan in todo:
            if progress:  # the worker reports nothing until it ends: show the method as started
                progress(f"{plan.method} (own process)", 0, 1)
            out = Path(tmp) / f"{plan.method}.json"
            proc = subprocess.run(
                [sys.executable, "-m", "infercomp.worker", str(config_path), plan.method, str(out), str(out_dir)],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0 and out.exists():
                payload = json.loads(out.read_text())
                if not results.environment:
                    results.settings, results.models = payload["settings"], payload["models"]
                    results.environment = payload["environment"]
                record = MethodResult.model_validate(payload["result"])
            else:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                record = MethodResult(
                    status="failed", reason=f"worker process exited with code {proc.returncode}: {tail}"
                )
            if progress:
                progress(f"{plan.method} (own process)", 1, 1)
            _finish_method(results, plan.method, record, out_dir, checkpoint)


def run_one_method(config: Config, method_name: str, checkpoint_dir: str | None = None) -> dict:
    """What a worker process does: load, run one method, return everything the parent records.
    With `checkpoint_dir`, each finished call is saved there (and saved ones replayed)."""
    from infercomp.checkpoint import Checkpoint
    from infercomp.loader import load_engine
    from infercomp.measure.bandwidth import measure_bandwidth_gbs
    from infercomp.measure.load import OtherLoad

    configure_threads(config)
    plan = next(p for p in make_plan(config) if p.method == method_name)
    engine = load_engine(
        config, need_assistant=method_name.endswith("_speculative") and config.draft_source == "assistant"
    )
    environment = capture_environment(engine.settings.device)
    environment["memory_bandwidth_gbs"] = measure_bandwidth_gbs(engine.settings.device)
    hook = Checkpoint(checkpoint_dir).hook(method_name) if checkpoint_dir else None
    run = MethodRun(engine, get_method(method_name), plan, environment["memory_bandwidth_gbs"], call_hook=hook)
    with OtherLoad() as load:
        run.warm_up()
        for repeat in range(config.repeats):
            run.measure_repeat(repeat, None)
    return {
        "result": method_result(run).model_copy(update={"cpu_load": load.record()}).model_dump(mode="json"),
        "settings": engine.settings.as_record(),
        "models": engine.describe_models(),
        "environment": environment,
    }
