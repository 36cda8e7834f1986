"""The main job: `infercomp run` with no arguments, as a user runs it after installing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_run_without_arguments_uses_quick_preset_on_embedded_pair(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "infercomp.cli", "run", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    assert data["config"]["main_model"] == "embedded:main"
    for name in ("standard", "batched", "beam_search", "nucleus_sampling"):
        assert data["methods"][name]["status"] == "ok"
        assert len(data["methods"][name]["completions"]) == 4
    assert "standard" in proc.stdout and "tok/s" in proc.stdout
    # The quick preset asks for 4-bit weights: on CPU without bitsandbytes that is a stated skip.
    assert any("use_quantization" in n for n in data["settings"]["notes"]) or data["settings"]["quantization"] != "none"
