"""Loading the engine a config asks for: the reference engine (stock transformers), or the fast
engine built over the reference engine's loaded models where it can run them."""

from __future__ import annotations

from infercomp.config import Config
from infercomp.engine import Engine


def load_engine(config: Config, need_assistant: bool) -> Engine:
    """Load the tokenizer and models once for the whole run, on the engine the config names
    (the fast engine where it can run these models and settings, else the reference one, with
    the reason in `settings.notes`)."""
    # Weights are quantized once, by whichever engine runs (the fast one quantizes its fused
    # projections), so the reference load leaves them alone when the fast engine is asked for.
    engine = Engine.load_reference(config, need_assistant, quantize=config.engine != "fast")
    if config.engine == "fast":
        from infercomp.fast import build_fast_engine

        engine = build_fast_engine(engine)
    return engine
