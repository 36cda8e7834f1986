"""Start the ranks of a tensor-parallel run on this machine and wait for them.

The ranks are started by torch.distributed's launcher (`python -m torch.distributed.run
--standalone`: a free local port, one process per rank, the environment torch.distributed
expects), each running `infercomp.distributed.worker`. This process loads nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from infercomp.config import Config, ConfigError
from infercomp.distributed import TensorParallelError
from infercomp.distributed.validate import check_tensor_parallel


def worker_command(config_path: str, size: int, output_dir: str, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={size}"]
    command += ["-m", "infercomp.distributed.worker", config_path, "--output-dir", output_dir]
    command += ["--error-file", str(Path(config_path).with_name("error"))]
    return command + (["--resume"] if resume else [])


def run_tensor_parallel(config: Config, output_dir: str, resume: bool = False):
    """Check the size, run all ranks, return rank 0's results (raises TensorParallelError)."""
    from infercomp.results import Results

    check_tensor_parallel(config)
    with tempfile.TemporaryDirectory(prefix="infercomp-tp-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(config.model_dump_json())
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")  # the launcher's own default for several ranks, said aloud
        code = _wait(
            subprocess.Popen(worker_command(str(config_path), config.tensor_parallel_size, output_dir, resume), env=env)
        )
        _raise_rank_error(Path(tmp))
    results_file = Path(output_dir) / "results.json"
    if code != 0:
        kept = f"; methods finished before it are in {results_file}" if results_file.exists() else ""
        raise TensorParallelError(
            f"tensor parallel run failed: the ranks exited with code {code} (their output is above){kept}"
        )
    return Results.load(results_file)


def run_from_cli(config: Config, output_dir: str, resume: bool, out, err) -> int:
    """`infercomp run` with tensor_parallel_size > 1: run the ranks, print rank 0's results and
    the per-GPU table on the console `out`; a failed run is one line on `err`. Returns the exit code."""
    from infercomp.distributed.report import tensor_parallel_markdown
    from infercomp.report.console import print_results

    try:
        results = run_tensor_parallel(config, output_dir, resume)
    except TensorParallelError as exc:
        err.print(f"infercomp: {exc}", markup=False, highlight=False, soft_wrap=True)
        return 1
    print_results(results, out)
    out.print("\n".join(tensor_parallel_markdown(results)), markup=False, highlight=False, soft_wrap=True)
    out.print(f"results: {Path(output_dir) / 'results.json'} (reports beside it)", highlight=False)
    return 0


def _raise_rank_error(folder: Path) -> None:
    """Re-raise the lowest rank's config or model error (written by the worker) in this process."""
    from infercomp.models import ModelLoadError

    files = sorted(folder.glob("error.*"), key=lambda p: int(p.suffix[1:]))
    if files:
        kind, _, message = files[0].read_text().partition("\t")
        raise (ConfigError if kind == "ConfigError" else ModelLoadError)(message)


def _wait(proc: subprocess.Popen) -> int:
    """Wait for the launcher; on Ctrl-C or SIGTERM stop it (it stops its ranks) and re-raise."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
