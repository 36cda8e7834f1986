"""Tensor parallel: one model sharded over several GPUs (or CPU processes), on torch.distributed.

Flow: `infercomp run CONFIG --set tensor_parallel_size=N` checks the size against the GPUs and the
main model's heads (`validate`), then starts N ranks through torch.distributed's launcher
(`launch`). Every rank (`worker`) joins one process group (NCCL on CUDA, gloo on CPU), loads the
main model sharded with transformers' tensor-parallel plan and the assistant whole, and makes the
same calls of every method; rank 0 alone writes results.json and the reports. `measure` holds what
only a distributed run has: per-rank memory, time in collectives, all-reduce bandwidth.

Multi-node runs start the same worker with torchrun on every node, e.g.
`torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500
-m infercomp.distributed.worker CONFIG --set tensor_parallel_size=16 --output-dir DIR`.
"""

from __future__ import annotations

REFERENCE_ENGINE = "transformers"
FAST_ENGINE_NOTE = (
    "engine 'fast' was asked for; the reference engine (transformers generate() and infercomp's "
    "speculative engine) ran: the fast engine's compiled decode step does not hold the ranks' collectives"
)


class TensorParallelError(RuntimeError):
    """A tensor-parallel run could not finish; the message is one line."""
