"""Planning reproduces the seed's three scenarios exactly."""

from __future__ import annotations

import json
import subprocess
import sys

from infercomp.config import load_config
from infercomp.plan import make_plan, plan_as_dict


def plan_of(**overrides):
    return plan_as_dict(make_plan(load_config("example", overrides=overrides)))["methods"]


def test_scenario_1_equal_completions():
    plans = plan_of(num_completions=3, batch_size=4)
    assert plans["batched"]["batches"] == [[0, 0, 0, 1], [1, 1]]
    assert plans["nucleus_sampling"]["batches"] == [[0, 0, 0, 1], [1, 1]]
    assert plans["standard"]["batches"] == [[0], [0], [0], [1], [1], [1]]
    assert plans["beam_search"]["batches"] == [[0, 0, 0], [1, 1, 1]]


def test_scenario_2_completions_per_prompt():
    plans = plan_of(prompts=["p1", "p2", "p3"], num_completions=[3, 2, 3], batch_size=4)
    assert plans["batched"]["batches"] == [[0, 0, 0, 1], [1, 2, 2, 2]]
    assert plans["beam_search"]["batches"] == [[0, 0, 0], [1, 1], [2, 2, 2]]
    assert sum(len(b) for b in plans["standard"]["batches"]) == 8


def test_scenario_3_single_prompt():
    plans = plan_of(prompts=["single prompt"], num_completions=8, batch_size=4)
    assert plans["batched"]["batches"] == [[0, 0, 0, 0], [0, 0, 0, 0]]


def test_speculative_variants_plan_like_their_base():
    plans = plan_of(num_completions=[1, 2], use_speculative_decoding=True, batch_size=2)
    for base in ("standard", "batched", "beam_search", "nucleus_sampling"):
        assert plans[f"{base}_speculative"] == plans[base]


def test_cli_plan_json_loads_no_model():
    code = (
        "import sys, runpy; sys.argv=['infercomp','plan','example','--json',"
        "'--set','prompts=[\"p1\",\"p2\",\"p3\"]','--set','num_completions=[3,2,3]'];"
        "from infercomp.cli import main\ntry:\n main()\nexcept SystemExit: pass\n"
        "print('TORCH_LOADED' if 'torch' in sys.modules else 'NO_TORCH', file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    data = json.loads(proc.stdout)
    assert data["methods"]["batched"]["batches"] == [[0, 0, 0, 1], [1, 2, 2, 2]]
    assert "NO_TORCH" in proc.stderr
