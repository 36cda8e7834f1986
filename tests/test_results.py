"""The result tree round-trips through JSON and carries config, settings and environment."""

from __future__ import annotations

import json

from infercomp.results import SCHEMA_VERSION, Results


def test_results_round_trip(greedy_run):
    results, directory = greedy_run
    loaded = Results.load(directory)
    assert loaded == results
    assert Results.model_validate_json(loaded.model_dump_json()) == loaded
    raw = json.loads((directory / "results.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert set(raw) >= {"config", "environment", "methods", "settings", "models"}
    env = raw["environment"]
    for key in ("python", "device", "torch_threads", "omp_wait_policy", "git_revision", "versions"):
        assert key in env
    assert env["versions"]["torch"] and env["versions"]["transformers"]
    assert raw["config"]["temperature"] == 0.0


def test_a_schema_3_file_still_loads(tmp_path):
    """Schema 3 named a speculative variant's note `speculation`; it loads as speculation_note
    and is saved again under the new name."""
    note = "not applicable: ran plain beam search"
    old = {
        "schema_version": 3,
        "config": {"main_model": "m"},
        "methods": {"beam_search_speculative": {"status": "ok", "speculation": note}},
    }
    (tmp_path / "results.json").write_text(json.dumps(old))
    loaded = Results.load(tmp_path)
    assert loaded.methods["beam_search_speculative"].speculation_note == note
    loaded.save(tmp_path)
    raw = json.loads((tmp_path / "results.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["methods"]["beam_search_speculative"]["speculation_note"] == note
    assert "speculation" not in raw["methods"]["beam_search_speculative"]
