"""Tensor parallel on CPU ranks (gloo): same greedy text as one process, one results file,
clear errors for impossible sizes, and random weights built on the meta device."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from infercomp.config import ConfigError, load_config
from infercomp.distributed.validate import check_tensor_parallel

PROMPT = "generate short bed time story containing word elephant and cake"


def _config(tmp_path, size: int, name: str):
    return load_config(
        "quick",
        {
            "tensor_parallel_size": size,
            "engine": "transformers",  # what tensor parallel runs: both sizes on the same engine
            "device": "cpu",
            "dtype": "float32",
            "temperature": 0.0,
            "max_new_tokens": 8,
            "prompts": [PROMPT],
            "num_completions": 2,
            "batch_size": 2,
            "methods_to_test": ["standard", "batched"],
            "warmup_runs": 0,
            "repeats": 1,
            "quality": False,
            "output_dir": str(tmp_path / name),
        },
        embedded=True,
    )


@pytest.mark.slow
def test_two_cpu_ranks_give_the_single_process_greedy_text_and_one_results_file(tmp_path):
    from infercomp.distributed.launch import run_tensor_parallel
    from infercomp.runner import run_experiment

    single = run_experiment(_config(tmp_path, 1, "one"))
    sharded = run_tensor_parallel(_config(tmp_path, 2, "two"), str(tmp_path / "two"))

    for method in ("standard", "batched"):
        ids_one = [c.token_ids for c in single.methods[method].completions]
        ids_two = [c.token_ids for c in sharded.methods[method].completions]
        assert sharded.methods[method].status == "ok"
        assert len(ids_two) == 2 and all(len(ids) == 8 for ids in ids_two)
        assert ids_two == ids_one, method
    # Rank 0 alone wrote: one results file (and its reports), nothing from rank 1 anywhere.
    written = sorted(p.relative_to(tmp_path / "two").as_posix() for p in (tmp_path / "two").rglob("*"))
    assert written == ["completions.csv", "report.html", "report.md", "results.json"]
    tp = sharded.tensor_parallel
    assert tp["size"] == 2 and tp["backend"] == "gloo"
    assert tp["all_reduce"]["busbw_gbs"] > 0
    ranks = tp["methods"]["batched"]["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    # Each rank holds a shard: less than the whole model's weights.
    whole = single.methods["batched"].summary.memory
    assert all(0 < r["weights_gb"] < whole.weights_gb for r in ranks)
    assert all(r["kv_cache_gb"] == pytest.approx(whole.kv_cache_gb / 2) for r in ranks)  # half the KV heads each
    collectives = tp["methods"]["batched"]["collectives"]
    assert all(c["collective_s"] > 0 and c["collective_events"] > 0 for c in collectives)


def test_size_not_dividing_the_heads_is_one_line_before_loading(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "infercomp.cli", "run", "quick", "--embedded", "--set", "tensor_parallel_size=3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "tensor_parallel_size" in lines[0] and "4 attention heads" in lines[0] and "allowed: 1, 2" in lines[0]
    assert not (tmp_path / "results").exists()


def test_size_not_dividing_the_kv_heads(tmp_path):
    config = _config(tmp_path, 4, "x")
    with pytest.raises(ConfigError, match=r"4 does not divide the main model's 2 KV heads.*allowed: 1, 2$"):
        check_tensor_parallel(config)


def test_more_ranks_than_gpus(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    config = _config(tmp_path, 2, "x").model_copy(update={"device": "auto"})
    with pytest.raises(ConfigError, match="2 needs 2 GPUs, one per rank; torch sees 1"):
        check_tensor_parallel(config)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("device", "cuda:1", "pins one GPU"),
        ("isolation", "process", "process group"),
        ("adaptive_draft", True, "draft"),
    ],
)
def test_settings_that_cannot_run_sharded(field, value, words):
    with pytest.raises(ConfigError, match=f"{field} with tensor_parallel_size 2: .*{words}"):
        load_config("quick", {"tensor_parallel_size": 2, field: value}, embedded=True)


def test_worker_refuses_a_world_of_another_size(monkeypatch, tmp_path):
    from infercomp.distributed.worker import _check_world

    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ConfigError, match="is 2 but the launcher started 4 ranks"):
        _check_world(_config(tmp_path, 2, "x"))


def test_random_weights_built_on_meta_are_finite_and_rope_is_recomputed():
    from transformers import LlamaForCausalLM

    from infercomp.architectures import architecture_config
    from infercomp.models import random_model

    # Llama 3.1's layout and "llama3" RoPE scaling, shrunk to run in a moment.
    shrink = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, head_dim=16)
    cfg = architecture_config("meta-llama/Llama-3.1-8B", {**shrink, "num_key_value_heads": 2, "vocab_size": 512})
    cfg._attn_implementation = "sdpa"
    model = random_model(cfg, "cpu", torch.float32, seed=0)
    assert not any(p.is_meta for p in model.parameters())
    assert 0.01 < model.model.layers[0].self_attn.q_proj.weight.std().item() < 0.03  # initializer_range 0.02
    reference = LlamaForCausalLM(cfg).model.rotary_emb.inv_freq
    torch.testing.assert_close(model.model.rotary_emb.inv_freq, reference)
    with torch.inference_mode():
        logits = model(torch.randint(0, 512, (2, 7))).logits
    assert logits.shape == (2, 7, 512) and torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "name, billions",
    [
        ("Qwen/Qwen3-8B", 8.19),
        ("Qwen/Qwen3-14B", 14.77),
        ("Qwen/Qwen3-32B", 32.76),
        ("meta-llama/Llama-3.1-8B", 8.03),
        ("meta-llama/Llama-3.1-70B", 70.55),
    ],
)
def test_built_in_architectures_have_the_published_parameter_counts(name, billions):
    from transformers import AutoModelForCausalLM

    from infercomp.architectures import architecture_config

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(architecture_config(name))
    count = sum(p.numel() for p in model.parameters()) / 1e9
    assert count == pytest.approx(billions, rel=0.005)


@pytest.mark.slow
def test_a_model_the_ranks_cannot_load_is_one_line_not_a_launcher_report(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "infercomp.cli", "run", "quick", "--embedded", "--quiet"]
        + ["--set", "tensor_parallel_size=2", "--set", "device=cpu", "--set", f"main_model={tmp_path / 'absent'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "absent" in line]
    assert len(errors) == 1 and errors[0].startswith("infercomp: ") and "could not be loaded" in errors[0]
    assert "Traceback" not in proc.stderr and "ChildFailedError" not in proc.stderr


def test_a_faster_engine_asked_for_under_tensor_parallel_is_recorded_not_run():
    from infercomp.config import Config
    from infercomp.distributed import FAST_ENGINE_NOTE
    from infercomp.distributed.worker import reference_engine

    class WithEngine(Config):  # a config that has an engine switch
        engine: str = "transformers"

    ran, note = reference_engine(WithEngine(engine="fast", tensor_parallel_size=2))
    assert ran.engine == "transformers" and note == FAST_ENGINE_NOTE
    assert reference_engine(WithEngine(tensor_parallel_size=2))[1] is None


@pytest.mark.gpu
def test_two_gpu_ranks_run_with_nccl_and_measure_every_gpu(tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 GPUs")
    from infercomp.distributed.launch import run_tensor_parallel

    config = _config(tmp_path, 2, "gpu").model_copy(update={"device": "auto", "dtype": "bfloat16"})
    results = run_tensor_parallel(config, str(tmp_path / "gpu"))
    tp = results.tensor_parallel
    assert tp["backend"] == "nccl" and tp["devices"] == ["cuda:0", "cuda:1"]
    assert tp["all_reduce"]["busbw_gbs"] > 1
    for method in ("standard", "batched"):
        assert results.methods[method].status == "ok"
        assert all(r["gpu_allocated_peak_gb"] > 0 for r in tp["methods"][method]["ranks"])
        assert all(c["collective_s"] > 0 and "NCCL" in c["measured_as"] for c in tp["methods"][method]["collectives"])


SHARDED_RANDOM = """
import sys
import torch, torch.distributed as dist
from infercomp.architectures import architecture_config
from infercomp.models import random_model
dist.init_process_group("gloo")
shrink = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=8, head_dim=8,
              num_key_value_heads=2, vocab_size=512)
for name in ("meta-llama/Llama-3.1-70B", "Qwen/Qwen3-32B"):
    cfg = architecture_config(name, shrink)
    cfg._attn_implementation = "sdpa"
    model = random_model(cfg, "cpu", torch.float32, seed=0, sharded=True)
    with torch.inference_mode():
        logits = model(torch.arange(1, 9)[None]).logits
    both = [torch.empty_like(logits) for _ in range(2)]
    dist.all_gather(both, logits)
    shard = tuple(model.model.layers[0].mlp.up_proj.weight.to_local().shape)
    # One write per line: the two ranks share the pipe, and print() may split a line in two writes.
    line = f"{name} {shard} {bool(torch.isfinite(logits).all())} {torch.equal(both[0], both[1])}\\n"
    sys.stdout.write(line)
    sys.stdout.flush()
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_random_weights_built_on_meta_are_sharded_on_two_ranks(tmp_path):
    script = tmp_path / "sharded_random.py"
    script.write_text(SHARDED_RANDOM)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = sorted(line for line in proc.stdout.splitlines() if line.startswith(("meta-llama", "Qwen")))
    # Each rank holds half of up_proj's 128 rows; logits are finite and the same on both ranks.
    assert lines == ["Qwen/Qwen3-32B (64, 64) True True"] * 2 + ["meta-llama/Llama-3.1-70B (64, 64) True True"] * 2
