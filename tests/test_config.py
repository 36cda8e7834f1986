"""Config validation: every bad input is one line on stderr naming the field, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infercomp.config import Config, ConfigError, load_config, preset_path

BAD = [
    ({"frobnicate": 1}, "unknown field 'frobnicate'"),
    ({"batch_size": "four"}, "field 'batch_size'"),
    ({"max_new_tokens": 2.5}, "field 'max_new_tokens'"),
    ({"temperature": -0.1}, "field 'temperature'"),
    ({"top_p": 0.0}, "field 'top_p'"),
    ({"top_p": 1.5}, "field 'top_p'"),
    ({"batch_size": 0}, "field 'batch_size'"),
    ({"num_completions": [3, 2, 1]}, "num_completions"),
    ({"num_completions": 0}, "field 'num_completions'"),
    ({"prompts": []}, "field 'prompts'"),
    ({"methods_to_test": ["warp_drive"]}, "unknown method 'warp_drive'"),
    ({"cache_implementation": "paged"}, "field 'cache_implementation'"),
    ({"use_quantization": "yes"}, "field 'use_quantization'"),
    ({"device": "tpu"}, "field 'device'"),
]


@pytest.mark.parametrize(("override", "expected"), BAD)
def test_bad_values_raise_one_line(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config("example", overrides=override)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    assert "got" in message or "allowed" in message or "entries" in message


def test_messages_name_what_is_allowed():
    with pytest.raises(ConfigError, match=r"'dynamic', 'static', 'offloaded' or 'quantized'.*got 'paged'"):
        load_config("example", overrides={"cache_implementation": "paged"})
    with pytest.raises(ConfigError, match=r"allowed: standard, batched"):
        load_config("example", overrides={"methods_to_test": ["warp_drive"]})


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "infercomp.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(("override", "expected"), BAD[:6] + BAD[7:])
def test_cli_prints_one_line_and_exits_2(tmp_path, override, expected):
    data = json.loads(preset_path("example").read_text())
    data.update(override)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    proc = run_cli("plan", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_set_goes_through_validation():
    proc = run_cli("plan", "example", "--set", "top_p=2")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "infercomp: config error: field 'top_p': Input should be less than or equal to 1; got 2"
    ]


def test_cli_malformed_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"batch_size": 4,')
    for proc in (run_cli("plan", str(path)), run_cli("plan", str(tmp_path / "nope.json"))):
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr


def test_seed_defaults():
    cfg = Config()
    assert (cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.top_k) == (150, 0.7, 0.9, 50)
    assert (cfg.num_completions, cfg.batch_size, cfg.methods_to_test) == (3, 4, None)
    assert (cfg.use_quantization, cfg.use_flash_attention, cfg.use_speculative_decoding) == (False, True, False)
    assert cfg.cache_implementation == "dynamic"


def test_speculative_switch_adds_variants_next_to_their_base():
    cfg = load_config(
        "example", overrides={"use_speculative_decoding": True, "methods_to_test": ["standard", "batched"]}
    )
    assert cfg.selected_methods() == ["standard", "standard_speculative", "batched", "batched_speculative"]


def test_presets_name_the_seed_models_and_embedded_switch_replaces_them():
    for name in ("quick", "example", "comprehensive"):
        cfg = load_config(name)
        assert (cfg.main_model, cfg.assistant_model) == ("Qwen/Qwen3-4B", "Qwen/Qwen3-0.6B")
        cfg = load_config(name, embedded=True)
        assert (cfg.main_model, cfg.assistant_model) == ("embedded:main", "embedded:assistant")
    quick = load_config("quick")
    assert (quick.num_completions, quick.max_new_tokens, quick.use_quantization) == (2, 50, True)
    comp = load_config("comprehensive")
    assert (len(comp.prompts), comp.num_completions, comp.use_speculative_decoding) == (5, 5, True)
