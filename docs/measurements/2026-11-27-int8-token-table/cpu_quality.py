"""int4 on the embedded pair (CPU, float32 and bfloat16): the quality figures (perplexity of the
unquantized model's greedy texts, greedy agreement) with the token table in the run's dtype and
in int8, on both engines. Run from the repository root with src/ on PYTHONPATH."""

import json
import os

from infercomp.config import load_config
from infercomp.loader import load_engine
from infercomp.measure.memory import weight_bytes

for dtype in ("float32", "bfloat16"):
    for table in ("none", "int8"):
        os.environ["INFERCOMP_QUANT_TABLE"] = table
        for engine_name in ("transformers", "fast"):
            overrides = dict(engine=engine_name, quantization="int4", use_quantization=False, device="cpu", dtype=dtype)
            engine = load_engine(load_config("quick", overrides, embedded=True), need_assistant=False)
            q = engine.settings.quantization_quality
            row = {
                "dtype": dtype,
                "table": table,
                "engine": engine.settings.engine,
                "weights_bytes": weight_bytes(engine.main),
                "perplexity_unquantized": q["perplexity_unquantized"],
                "perplexity_quantized": q["perplexity_quantized"],
                "relative_delta": q["relative_delta"],
                "greedy_agreed_tokens": q["greedy_agreed_tokens"],
            }
            print(json.dumps(row), flush=True)
