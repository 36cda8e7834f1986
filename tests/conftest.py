"""Shared fixtures: the embedded pair (small, local, offline) and one all-methods run."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))

PROMPTS = [
    "generate short bed time story containing word elephant and cake",
    "Once upon a time",
    "Write a short bedtime story with the words turtle and kite.",
]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_pair():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from infercomp.models import EMBEDDED

    tok = AutoTokenizer.from_pretrained(EMBEDDED["embedded:main"])
    main = AutoModelForCausalLM.from_pretrained(EMBEDDED["embedded:main"], dtype=torch.float32).eval()
    assistant = AutoModelForCausalLM.from_pretrained(EMBEDDED["embedded:assistant"], dtype=torch.float32).eval()
    return tok, main, assistant


@pytest.fixture(scope="session")
def greedy_run(tmp_path_factory):
    """Every method once, greedy, on three prompts of different lengths."""
    from infercomp.config import load_config
    from infercomp.runner import run_experiment

    cfg = load_config(
        "example",
        embedded=True,
        overrides={
            "prompts": PROMPTS,
            "num_completions": [2, 1, 3],
            "batch_size": 4,
            "max_new_tokens": 24,
            "temperature": 0.0,
            "repeats": 1,
            "use_speculative_decoding": True,
        },
    )
    out = tmp_path_factory.mktemp("greedy_run")
    return run_experiment(cfg, out), out
