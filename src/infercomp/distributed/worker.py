"""One rank of a tensor-parallel run: join the process group, load, run every method, and (rank 0
only) write results.json and the reports. Started by `infercomp run` through torch.distributed's
launcher, or by hand with torchrun for several nodes:

    torchrun --nproc-per-node N -m infercomp.distributed.worker CONFIG [--set k=v ...] [--output-dir DIR] [--resume]

Every rank makes the same calls in the same order with the same seeds: the sharded layers'
collectives pair up across ranks, and the all-reduced logits (identical on every rank) make the
same choices everywhere. Measurements each rank takes are gathered to rank 0 per method.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    from transformers.utils import logging as hf_logging

    from infercomp.config import ConfigError, load_config
    from infercomp.models import ModelLoadError

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        config = load_config(args.config, args.set or [])
        _check_world(config)
    except ConfigError as exc:
        sys.exit(_user_error(exc, args.error_file))
    start_process_group(config)
    code = 0
    try:
        run_rank(config, Path(args.output_dir or config.output_dir), args.resume)
    except (ConfigError, ModelLoadError) as exc:
        code = _user_error(exc, args.error_file)
    finally:
        import torch.distributed as dist

        dist.destroy_process_group()  # else the launcher reports a failure after the work is done
    sys.exit(code)


def _user_error(exc: Exception, error_file: str | None) -> int:
    """A bad config or model is one line, not a launcher failure report: with --error-file (as
    `infercomp run` passes) the line goes there for the parent to print and the rank exits 0."""
    if error_file is None:
        _say(f"infercomp: {exc}")
        return 2
    rank = os.environ.get("RANK", "0")
    Path(f"{error_file}.{rank}").write_text(f"{type(exc).__name__}\t{exc}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infercomp.distributed.worker")
    parser.add_argument("config")
    parser.add_argument("--set", action="append", help="override a field: key=value")
    parser.add_argument("--output-dir")
    parser.add_argument("--resume", action="store_true", help="run only the methods missing from DIR")
    parser.add_argument("--error-file", help="write a config or model error here (PATH.RANK) and exit 0")
    return parser.parse_args(argv)


def _check_world(config) -> None:
    from infercomp.config import ConfigError

    world = int(os.environ.get("WORLD_SIZE", "0"))
    if world != config.tensor_parallel_size:
        raise ConfigError(
            f"config error: field 'tensor_parallel_size' is {config.tensor_parallel_size} but the launcher "
            f"started {world or 'no'} ranks (WORLD_SIZE); start exactly tensor_parallel_size ranks"
        )


def _say(text: str) -> None:
    if os.environ.get("RANK", "0") == "0":
        print(text, file=sys.stderr, flush=True)


def start_process_group(config) -> None:
    """NCCL with one GPU per rank on CUDA, gloo on CPU."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available() and config.device in ("auto", "cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local))
    else:
        dist.init_process_group("gloo")


def run_rank(config, out_dir: Path, resume: bool) -> None:
    """Every method of `config` on this rank; rank 0 records and saves after each method."""
    import torch.distributed as dist

    from infercomp.collect import MethodRun
    from infercomp.loader import load_engine
    from infercomp.measure.bandwidth import measure_bandwidth_gbs
    from infercomp.methods import get_method
    from infercomp.plan import make_plan
    from infercomp.process import configure_threads

    writer = dist.get_rank() == 0
    run_config, engine_note = reference_engine(config)
    run_config = _threads_per_rank(run_config)
    configure_threads(run_config)
    todo, results = _todo(config, out_dir, resume, writer)
    need_assistant = config.draft_source == "assistant" and any(p.method.endswith("_speculative") for p in todo)
    _progress(writer, f"loading models on {dist.get_world_size()} ranks")
    engine = load_engine(run_config, need_assistant)
    bandwidth = measure_bandwidth_gbs(engine.settings.device)
    record = _describe(engine, bandwidth, engine_note, results)
    runs = [MethodRun(engine, get_method(p.method), p, bandwidth) for p in todo]
    for run in _measured(runs, config.interleave, config.repeats, writer):
        _record(run, record, results, out_dir)
    if writer:
        _finish(results, config, make_plan(config), out_dir)


def _describe(engine, bandwidth: float, engine_note: str | None, results) -> dict[str, Any]:
    """The run's tensor-parallel record (every rank takes part); rank 0 also fills the run's
    settings, models and environment."""
    import torch.distributed as dist

    from infercomp.distributed import REFERENCE_ENGINE, measure
    from infercomp.environment import capture_environment

    device = engine.settings.device
    record = {
        "size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "devices": measure.gather(device),
        "memory_bandwidth_gbs": measure.gather(bandwidth),
        "main_model": "sharded with transformers' tensor-parallel plan 'auto'",
        "assistant_model": _assistant_placement(engine),
        "engine": REFERENCE_ENGINE,
        "engine_note": engine_note,
        "all_reduce": measure.all_reduce_bandwidth(device),
        "methods": {},
    }
    if results is None:  # not rank 0
        return record
    record["methods"] = dict((results.tensor_parallel or {}).get("methods", {}))  # kept on resume
    if not results.environment:
        results.settings = engine.settings.as_record()
        notes = [engine_note, _isolation_note(engine.config, device)]
        results.settings["notes"] = list(results.settings["notes"]) + [n for n in notes if n]
        results.models = engine.describe_models()
        results.environment = capture_environment(device)
        results.environment["memory_bandwidth_gbs"] = bandwidth
    return record


def _measured(runs, interleave: bool, repeats: int, writer: bool):
    """Warm up and time each method, yielding each once it is measured; with `interleave` the
    repeats go round-robin (A B C A B C) so drift hits all methods alike."""
    if interleave:
        _progress(writer, f"{len(runs)} methods interleaved: warm-up and {repeats} repeats")
        for run in runs:
            run.warm_up()
        for repeat in range(repeats):
            for run in runs:
                run.measure_repeat(repeat, None)
        yield from runs
        return
    for run in runs:
        _progress(writer, f"{run.method.name}: warm-up and {repeats} repeats")
        run.warm_up()
        for repeat in range(repeats):
            run.measure_repeat(repeat, None)
        yield run


def _record(run, record: dict[str, Any], results, out_dir: Path) -> None:
    """Time in collectives and every rank's figures for one method; rank 0 saves."""
    from infercomp.distributed import measure
    from infercomp.figures import method_result

    device = run.engine.settings.device
    collectives = measure.gather(_profiled_call(run, device))
    result = method_result(run)
    per_rank = measure.gather(measure.rank_figures(result, device))
    if results is None:  # not rank 0
        return
    record["methods"][run.method.name] = {"ranks": per_rank, "collectives": collectives}
    results.methods[run.method.name] = result
    results.incomplete.remove(run.method.name)
    results.tensor_parallel = record
    results.save(out_dir)


def reference_engine(config) -> tuple[Any, str | None]:
    """The config the ranks run: the reference engine, with a note when another was asked for."""
    from infercomp.distributed import FAST_ENGINE_NOTE, REFERENCE_ENGINE

    asked = getattr(config, "engine", REFERENCE_ENGINE)
    if asked == REFERENCE_ENGINE:
        return config, None
    return config.model_copy(update={"engine": REFERENCE_ENGINE}), FAST_ENGINE_NOTE


def _isolation_note(config, device: str) -> str | None:
    if config.isolation == "auto" and device.startswith("cuda"):
        return (
            "isolation 'process' not used: each rank runs all methods in its one process (joined to the ranks' group)"
        )
    return None


def _threads_per_rank(config):
    """CPU ranks share the cores: without num_threads each rank takes cores / ranks threads."""
    import torch.distributed as dist

    from infercomp.process import physical_cores

    if config.num_threads is not None or dist.get_backend() != "gloo":
        return config
    return config.model_copy(update={"num_threads": max(1, physical_cores() // dist.get_world_size())})


def _todo(config, out_dir: Path, resume: bool, writer: bool):
    """The plans still to run (the same on every rank) and, on rank 0, the results to fill."""
    from infercomp.config import ConfigError
    from infercomp.distributed.measure import gather
    from infercomp.plan import make_plan
    from infercomp.results import Results
    from infercomp.runner import load_for_resume

    plans = make_plan(config)
    results, names, problem = None, [], None
    if writer:
        try:
            results = load_for_resume(config, out_dir) if resume else None
        except ConfigError as exc:
            problem = str(exc)
        if results is None:
            results = Results(config=config.model_dump(mode="json"))
        names = [p.method for p in plans if p.method not in results.methods]
        results.incomplete = list(names)
    names, problem = gather((names, problem))[0]  # rank 0's answer, on every rank
    if problem:
        raise ConfigError(problem)
    return [p for p in plans if p.method in names], results


def _assistant_placement(engine) -> str:
    if engine.assistant is None:
        return "not loaded"
    return "replicated: a whole copy on every rank (it is small; its steps need no collectives)"


def _profiled_call(run, device: str) -> dict[str, Any] | None:
    """Time in collectives during one extra call of the method's first batch (not in any figure)."""
    from infercomp.distributed.measure import collective_time

    if not run.active:
        return None
    try:
        return collective_time(lambda: run.method.run_call(run.engine, run.plan.batches[0]), device)
    except Exception as exc:  # noqa: BLE001 - the measurement is extra: its failure must not lose the method
        return {"unavailable": f"profiling failed: {type(exc).__name__}: {exc}".splitlines()[0]}


def _progress(writer: bool, text: str) -> None:
    if writer:
        print(f"infercomp: {text}", file=sys.stderr, flush=True)


def _finish(results, config, plans, out_dir: Path) -> None:
    from infercomp.report.files import write_reports
    from infercomp.runner import finalize

    finalize(results, config, plans)
    results.save(out_dir)
    write_reports(results, out_dir)


if __name__ == "__main__":
    main()
