"""A worker process: runs one method of a config and writes what the parent records.

Usage (by the runner, not by hand): python -m infercomp.worker CONFIG.json METHOD OUT.json [RUN_DIR]
(with RUN_DIR, each finished call is saved to RUN_DIR/checkpoint.jsonl as it completes)
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP


def main() -> None:
    from transformers.utils import logging as hf_logging

    from infercomp.config import Config
    from infercomp.runner import run_one_method

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    config_path, method, out_path = sys.argv[1:4]
    run_dir = sys.argv[4] if len(sys.argv) > 4 else None
    with open(config_path) as fh:
        config = Config.model_validate(json.load(fh))
    payload = run_one_method(config, method, run_dir)
    tmp = out_path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main()
