"""NVML (nvidia-ml-py) set-up shared by the energy and memory meters."""

from __future__ import annotations


def device_handle(device: str):
    """NVML's handle of a CUDA device named like torch does ('cuda', 'cuda:1'). Raises
    ImportError without nvidia-ml-py, and NVML's own errors where the driver refuses."""
    import pynvml

    pynvml.nvmlInit()
    index = int(device.split(":")[1]) if ":" in device else 0
    return pynvml.nvmlDeviceGetHandleByIndex(index)
