"""Run Triton kernels through Triton's CPU interpreter in a test module, or skip the module.

Triton decides at import whether its kernels run interpreted, for the whole process: never switch
it on where the GPU tests (which compile real kernels) may run in the same process. Call
`interpret_or_skip()` at the top of a test module, before anything imports Triton."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch


def interpret_or_skip() -> None:
    if importlib.util.find_spec("triton") is None:
        pytest.skip("skipped: Triton not installed (CUDA builds of torch bring it)", allow_module_level=True)
    if torch.cuda.is_available():
        pytest.skip("skipped on a GPU machine: the GPU tests run the real kernels", allow_module_level=True)
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("skipped: Triton was imported before interpreting was set", allow_module_level=True)
    os.environ["TRITON_INTERPRET"] = "1"
