"""Daily use: bad input is one line and exit 2, interrupted runs keep their calls and resume,
one run per output folder, truthful records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def infercomp(*args, cwd=None, timeout=240, env=None):
    full_env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "infercomp.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def start(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "infercomp.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def assert_one_line_error(proc, *words):
    lines = proc.stderr.rstrip("\n").splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("infercomp: ") and "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "latin1.json").write_bytes(b'{"prompts": ["caf\xe9"]}')
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "empty-model").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "long.json").write_text(json.dumps({"prompts": ["once upon a time " * 300]}))
    return tmp_path


@pytest.mark.parametrize(
    "args,words",
    [
        (["run", "latin1.json"], ["not UTF-8"]),
        (["run", "a-folder"], ["is a directory"]),
        (["run", "--embedded", "--set", "main_model=empty-model"], ["holds no model", "config.json is missing"]),
        (["run", "--embedded", "--output-dir", "a-file"], ["existing file"]),
        (["maxbatch", "--embedded", "--method", "nosuch"], ["unknown method 'nosuch'", "allowed:"]),
        (["maxbatch", "--embedded", "--limit", "0"], ["--limit", "greater than or equal to 1"]),
        (["maxbatch", "--embedded", "--limit", "-3"], ["--limit"]),
        (["run", "--embedded", "--set", "device=cuda:7"], ["device"]),
        (["run", "long.json", "--embedded", "--output-dir", "o"], ["1024", "max_position_embeddings", "prompt 0"]),
        (["maxbatch", "quick", "--method", "batched"], ["not in the local Hugging Face cache", "offline"]),
        (["run", "--nosuch"], ["No such option"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(files, args, words):
    proc = infercomp(*args, cwd=files, env={"HF_HUB_OFFLINE": "1"}, timeout=60)
    assert_one_line_error(proc, *words)
    assert not (files / "o").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "name,value",
    [
        ("INFERCOMP_FAST_BLOCK_ATTENTION", "off"),
        ("INFERCOMP_FAST_NORM_CHAIN_ROWS", "eight"),
        ("INFERCOMP_FAST_REORDER_MB", "lots"),
    ],
)
def test_a_bad_engine_variable_is_one_line_before_anything_is_written(tmp_path, name, value):
    proc = infercomp("run", "--embedded", "--output-dir", "o", cwd=tmp_path, env={name: value}, timeout=120)
    assert_one_line_error(proc, f"{name}={value!r}", "expected")
    assert not (tmp_path / "o").exists()


def test_an_unexpected_error_reaches_the_user_as_itself(monkeypatch):
    """main()'s handlers for interrupts name typer's Abort wherever this typer keeps it: an error
    no handler takes passes through unchanged (it once became an AttributeError about Abort)."""
    from infercomp import cli, process

    def fails(**kwargs):
        raise RuntimeError("a library's own error")

    monkeypatch.setattr(process, "install_interrupt_handlers", lambda: None)
    monkeypatch.setattr(cli, "app", fails)
    with pytest.raises(RuntimeError, match="a library's own error"):
        cli.main()


@pytest.mark.parametrize("signal_number,code", [(15, 143), (2, 130)])
def test_a_command_typer_stopped_exits_with_its_signals_code(monkeypatch, signal_number, code):
    """typer turns an interrupt in a command without one_line_errors (`methods`) into exit 130;
    main() gives SIGTERM its own 143."""
    from infercomp import cli, process

    monkeypatch.setattr(process, "install_interrupt_handlers", lambda: None)
    monkeypatch.setattr(process, "interrupt_signal", lambda: signal_number)

    def exit_at_once(exit_code):  # the real one leaves the test's process
        raise SystemExit(("at once", exit_code))

    monkeypatch.setattr(process, "exit_at_once", exit_at_once)
    monkeypatch.setattr(cli, "app", lambda **kwargs: 130)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == ("at once", code)


def test_typers_abort_is_an_interrupt(monkeypatch, capsys):
    """typer's Abort (an EOF at a prompt, or a command's own abort) ends the run as an interrupt."""
    import typer

    from infercomp import cli, process

    def aborts(**kwargs):
        raise typer.Abort()

    monkeypatch.setattr(process, "install_interrupt_handlers", lambda: None)
    monkeypatch.setattr(cli, "app", aborts)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 130 and "infercomp: interrupted" in capsys.readouterr().err


def test_read_only_output_folder_is_refused_before_any_method(tmp_path):
    if os.geteuid() == 0:  # root writes into chmod-ed folders; sysfs refuses even root
        target = Path("/sys/infercomp-out")
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root without sysfs: no folder root cannot write")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "out"
    began = time.monotonic()
    proc = infercomp("run", "--embedded", "--quiet", "--output-dir", str(target))
    assert_one_line_error(proc, "not writable")
    assert time.monotonic() - began < 60  # refused before any model loaded or method ran


def test_offline_hub_model_is_refused_at_once(tmp_path):
    began = time.monotonic()
    proc = infercomp("maxbatch", "quick", "--method", "batched", cwd=tmp_path, env={"HF_HUB_OFFLINE": ""})
    assert_one_line_error(proc, "Qwen/Qwen3-4B")
    assert time.monotonic() - began < 30  # no minute of retries


def test_run_sh_check_checks_what_quick_runs():
    bin_dir = str(Path(sys.executable).parent)
    if not (Path(bin_dir) / "infercomp").exists():
        pytest.skip("the infercomp command is not installed beside this Python")
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        ["bash", "run.sh", "check"], cwd=Path(SRC).parent, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "embedded:main" in proc.stdout and "can run here" in proc.stdout


SMALL = ["--set", "max_new_tokens=6", "--set", "repeats=2", "--set", "quality=false"]


def wait_until(done, proc: subprocess.Popen, seconds: float) -> None:
    """Poll done() until it holds, `proc` ends or `seconds` pass (limits generous: loaded cores)."""
    deadline = time.monotonic() + seconds
    while not done() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)


def _saved_calls(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["none", "process"])  # process: each method in a worker (GPU default)
def test_interrupted_comprehensive_run_keeps_calls_and_resumes_without_rerunning(tmp_path, isolation):
    out = tmp_path / "run"
    # two completions per prompt (the preset has five): still tens of calls left at the interrupt
    setting = ["--set", f'isolation="{isolation}"', "--set", "num_completions=2"]
    if isolation == "process":  # a worker per method costs a model load each: fewer methods
        setting += ["--set", 'methods_to_test=["standard", "batched"]']
    proc = start("run", "comprehensive", "--embedded", "--quiet", "--output-dir", str(out), *SMALL, *setting)
    checkpoint = out / "checkpoint.jsonl"
    # Generous limits: on loaded cores a worker's model load alone can take a minute; the loop
    # ends as soon as three calls are saved.
    wait_until(lambda: len(_saved_calls(checkpoint)) >= 3, proc, 600)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    assert len(_saved_calls(checkpoint)) >= 3, "no three calls saved within 600 s"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: infercomp run --resume {out}" in stderr
    saved = _saved_calls(checkpoint)
    assert len(saved) >= 3
    kept = json.loads((out / "results.json").read_text())
    assert kept["incomplete"], "the interrupted run must say what is left"
    assert (out / "results.json").stat().st_mode & 0o777 == 0o666 & ~_umask()

    resumed = infercomp("run", "--resume", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads((out / "results.json").read_text())
    assert final["incomplete"] == [] and not checkpoint.exists()
    plan = json.loads(infercomp("plan", "comprehensive", *SMALL, *setting, "--json").stdout)
    for name, entry in plan["methods"].items():
        method = final["methods"][name]
        assert method["status"] == "ok", (name, method.get("reason"))
        planned = sum(len(b) for b in entry["batches"])
        assert len(method["completions"]) == planned, name
        assert method["summary"]["repeats"] == 2
    # Calls saved before the interrupt were replayed, not run again: their recorded wall time
    # in that repeat is exactly the saved one (a second run would have measured a new time).
    for call in saved:
        method = final["methods"][call["method"]]
        rows = [c for c in method["completions"] if c["call_index"] == call["call"]]
        assert rows, call
        assert rows[0]["call_times_s"][call["repeat"]] == call["outputs"][0]["seconds"]
        if call["repeat"] == 0:
            texts = sorted(r["token_ids"] for r in rows)
            assert texts == sorted(r["token_ids"] for o in call["outputs"] for r in o["rows"])
    # Methods finished before the interrupt are kept as they were.
    for name, before in kept["methods"].items():
        assert final["methods"][name]["completions"] == before["completions"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.slow
def test_second_run_into_a_busy_folder_refuses_and_the_first_completes(tmp_path):
    out = tmp_path / "shared"
    first = start("run", "quick", "--embedded", "--quiet", "--output-dir", str(out), *SMALL)
    wait_until((out / "results.json").exists, first, 120)
    second = infercomp("run", "quick", "--embedded", "--quiet", "--output-dir", str(out), *SMALL)
    assert_one_line_error(second, "in use by another infercomp run", f"pid {first.pid}")
    first.communicate(timeout=240)
    assert first.returncode == 0
    final = json.loads((out / "results.json").read_text())
    assert final["incomplete"] == []
    assert sorted(final["methods"]) == sorted(["standard", "batched", "beam_search", "nucleus_sampling"])
    assert all(m["status"] == "ok" and m["completions"] for m in final["methods"].values())


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    from infercomp.lockfile import LOCK_FILE, OutputLock

    (tmp_path / LOCK_FILE).write_text("999999\n")  # no process holds it
    with OutputLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_sigterm_exits_143_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    proc = start("run", "quick", "--embedded", "--quiet", "--output-dir", str(out), *SMALL)
    wait_until((out / "results.json").exists, proc, 120)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "resume with: infercomp run --resume" in stderr and "Traceback" not in stderr


# A KeyboardInterrupt that escapes code a C extension ran with PyRun_String leaves Python's
# "unhandled interrupt" flag set, so a later sys.exit(143) still ends a `python -m` process (as
# `python -m infercomp.cli` is) by SIGINT.
_ESCAPED_INTERRUPT = """
import ctypes, sys
from infercomp.process import exit_at_once, install_interrupt_handlers
install_interrupt_handlers()
run = ctypes.pythonapi.PyRun_String
run.restype, run.argtypes = ctypes.py_object, [ctypes.c_char_p, ctypes.c_int, ctypes.py_object, ctypes.py_object]
try:
    run(b"import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 257, {}, {})  # 257: Py_file_input
except KeyboardInterrupt:
    print("caught", flush=True)
exit_at_once(143) if sys.argv[1] == "at-once" else sys.exit(143)
"""


@pytest.mark.parametrize("how, code", [("at-once", 143), ("sys.exit", -signal.SIGINT)])
def test_exit_after_an_interrupt_from_c_code_keeps_its_code_only_at_once(how, code, tmp_path):
    (tmp_path / "escaped.py").write_text(_ESCAPED_INTERRUPT)
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp_path}"}
    done = subprocess.run([sys.executable, "-m", "escaped", how], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "caught\n" and done.returncode == code, done.stderr


_DEFERRED = """
import os, signal
from infercomp.process import install_interrupt_handlers, interrupts_deferred
install_interrupt_handlers()
try:
    with interrupts_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        print("inside", flush=True)  # still runs: the interrupt waits for the block's end
    print("after")
except KeyboardInterrupt:
    print("raised at the end", flush=True)
"""


def test_an_interrupt_during_library_imports_waits_for_the_imports_to_end():
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", _DEFERRED], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "inside\nraised at the end\n" and done.returncode == 0, done.stderr


_TWICE = """
import os, signal
from infercomp.process import install_interrupt_handlers
install_interrupt_handlers()
try:
    os.kill(os.getpid(), signal.SIGTERM)
except KeyboardInterrupt:
    print("cleaning up", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # a second signal while cleaning up
    print("never printed", flush=True)
"""


def test_a_second_signal_during_cleanup_stops_at_once():
    env = {**os.environ, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", _TWICE], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout == "cleaning up\n" and done.returncode == 128 + signal.SIGTERM, done.stderr


# ---------------------------------------------------------------------------------------------
# Truthful records


def test_compare_names_workload_differences_and_incomplete_runs(greedy_run, tmp_path):
    results, _ = greedy_run
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    results.save(a)
    longer = results.model_copy(deep=True)
    longer.config["max_new_tokens"] = 150
    longer.save(b)
    refused = infercomp("compare", str(a), str(b))
    assert_one_line_error(refused, "different workloads", "max_new_tokens: a=24, b=150", "--force")
    forced = infercomp("compare", str(a), str(b), "--markdown", "--force")
    assert forced.returncode == 0 and "different workloads, ratios not comparable: max_new_tokens" in forced.stdout
    partial = results.model_copy(deep=True)
    partial.incomplete = ["nucleus_sampling"]
    partial.methods["batched"].status = "failed"
    partial.save(c)
    shown = infercomp("compare", str(a), str(c), "--markdown")
    assert shown.returncode == 0, shown.stderr
    assert "c is incomplete (not run: nucleus_sampling; failed: batched)" in shown.stdout


def test_beam_search_records_the_beams_it_ran(greedy_run):
    results, _ = greedy_run
    gen = results.methods["beam_search"].generation
    # num_completions [2, 1, 3]: one call per prompt with that many beams and sequences.
    assert gen["num_beams"] == [2, 1, 3] and gen["num_return_sequences"] == [2, 1, 3]
    assert results.methods["batched"].generation["do_sample"] is False


def test_environment_records_infercomp_not_the_current_folders_repository(tmp_path, monkeypatch):
    from infercomp import __version__
    from infercomp.environment import git_revision, infercomp_version

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=a",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    other = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    monkeypatch.chdir(tmp_path)
    rev = git_revision()
    assert rev is None or not rev.startswith(other.strip())  # never the current folder's repository
    import infercomp

    if Path(infercomp.__file__).resolve().is_relative_to(Path(SRC).resolve()):  # run from this checkout
        ours = subprocess.run(["git", "-C", SRC, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert rev is not None and rev.startswith(ours)
    else:  # an installed copy (CI installs the package): no checkout to read, so no revision
        assert rev is None
    assert infercomp_version() == __version__


def test_load_from_other_processes_is_measured(tmp_path):
    from infercomp.measure.load import OtherLoad

    # A busy loop outside this process tree (double fork: its parent exits at once).
    pidfile = tmp_path / "pid"
    subprocess.run(["sh", "-c", f"(timeout 4 sh -c 'while :; do :; done' & echo $! > {pidfile}) &"], check=True)
    time.sleep(0.3)
    with OtherLoad() as load:
        time.sleep(2.0)
    record = load.record()
    assert record["other_cores"] >= 0.5, record  # the busy loop kept about one core busy
    assert record["loaded"] is True


def test_a_run_with_a_failed_method_exits_1(greedy_run):
    from infercomp.session import EXIT_METHOD_FAILED, EXIT_OK, exit_code

    results, _ = greedy_run
    assert exit_code(results) == EXIT_OK
    broken = results.model_copy(deep=True)
    broken.methods["batched"].status = "failed"
    assert exit_code(broken) == EXIT_METHOD_FAILED == 1
