"""infercomp: run LLM inference methods side by side and measure them honestly.

Kept free of heavy imports so that `infercomp plan` and config validation start fast; the
public API (`run_experiment`, `Results`) is imported lazily.
"""

from __future__ import annotations

from infercomp.version import __version__

__all__ = ["Config", "Results", "run_experiment", "__version__"]


def __getattr__(name: str):
    if name == "Config":
        from infercomp.config import Config

        return Config
    if name == "Results":
        from infercomp.results import Results

        return Results
    if name == "run_experiment":
        from infercomp.runner import run_experiment

        return run_experiment
    raise AttributeError(name)
