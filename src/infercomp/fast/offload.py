"""The fast engine's offloaded KV cache: every layer's keys and values in host memory (pinned),
two layers' worth on the device.

A forward pass streams the cache through two device buffers, one layer ahead of the compute, on a
side stream (CUDA): while layer i runs on buffer i % 2, the side stream writes the previous
layer's buffer back to the host (it holds the new keys) and fills that buffer with layer i + 2.
Every copy has fixed addresses (whole layers, or a prefill group's rows), so the pass can be
captured as a CUDA graph with its copies and stream joins. The price is bus traffic: each decode
step moves the whole cache to the device and back, so a step costs about cache bytes / bus
bandwidth; what it buys is device memory, four layer buffers instead of every layer.

A prefill writes its rows and reads only its own fresh keys, so it skips the copies to the
device and writes back only the rows it wrote. Beam search's reorder is a row permutation kept on
the device and applied as each layer arrives (the host copy is rewritten in the new order).
On CPU the same steps run in order, without streams: the tests check the bookkeeping there.
"""

from __future__ import annotations

import contextlib

import torch


class OffloadedKVCache:
    """Keys and values of `rows` rows of `slots` positions, in the model dtype, held on the host."""

    kind = "offloaded"

    def __init__(self, shape, rows: int, slots: int, dtype, device):
        device = torch.device(device)
        self.cuda = device.type == "cuda"
        size = (rows, shape.kv_heads, slots, shape.head_dim)
        host = dict(dtype=dtype, pin_memory=self.cuda)
        self.host_k = [torch.zeros(size, **host) for _ in range(shape.layers)]
        self.host_v = [torch.zeros(size, **host) for _ in range(shape.layers)]
        self.buf = [tuple(torch.zeros(size, dtype=dtype, device=device) for _ in range(2)) for _ in range(2)]
        self.identity = torch.arange(rows, device=device)
        self.perm = self.identity.clone()  # row i of the next pass reads host row perm[i]
        self.layers, self.dtype = shape.layers, dtype
        self.rows, self.slots = rows, slots
        self.heads = torch.arange(shape.kv_heads, device=device)[None, None, :]  # (1, 1, kv_heads)
        self.side = torch.cuda.Stream(device) if self.cuda else None
        self.ready = [None, None]  # per buffer: the side stream's last work on it (CUDA event)
        self.written: slice | None = None

    # -- what the engine and the forward pass see ---------------------------------------------

    def layer(self, i: int) -> tuple:
        k, v = self.buf[i % 2]
        return k, v, None, None

    def tensors(self) -> list[torch.Tensor]:
        return self.host_k + self.host_v + [t for pair in self.buf for t in pair]

    def nbytes(self) -> int:
        """Bytes of the cache's tensors, host and device."""
        return sum(t.numel() * t.element_size() for t in self.tensors())

    def device_nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for pair in self.buf for t in pair)

    def reorder(self, parents: torch.Tensor) -> None:
        """Beam search: row i continues from row parents[i] (B,). Composed into the permutation
        the next pass applies as each layer arrives."""
        b = parents.shape[0]
        self.perm[:b].copy_(self.perm.index_select(0, parents))

    # -- the pass: begin, before / after each layer, end --------------------------------------

    def begin(self, written: slice | None) -> None:
        """written: the rows a prefill group writes (nothing is read back), or None: a step that
        reads every row, which streams the whole cache."""
        self.written = written
        self.ready = [None, None]  # events of an earlier pass (or capture) are not waited on
        if self.cuda:
            self.side.wait_stream(torch.cuda.current_stream())  # the buffers' last readers are done
        if written is not None:
            self.perm.copy_(self.identity)  # a prefill starts the rows afresh
            return
        with self._on_side():
            for i in range(min(2, self.layers)):
                self._stage(i)

    def before(self, i: int) -> None:
        if self.cuda and self.ready[i % 2] is not None:
            torch.cuda.current_stream().wait_event(self.ready[i % 2])

    def after(self, i: int) -> None:
        if self.cuda:
            done = torch.cuda.Event()
            done.record()
            self.side.wait_event(done)
        with self._on_side():
            rows = self.written or slice(None)
            k, v = self.buf[i % 2]
            self.host_k[i][rows].copy_(k[rows], non_blocking=self.cuda)
            self.host_v[i][rows].copy_(v[rows], non_blocking=self.cuda)
            if self.written is None and i + 2 < self.layers:
                self._stage(i + 2)
            else:
                self._mark(i % 2)

    def end(self) -> None:
        if self.cuda:
            torch.cuda.current_stream().wait_stream(self.side)
        if self.written is None:
            self.perm.copy_(self.identity)  # the host now holds the rows in the new order
        self.written = None

    def _stage(self, i: int) -> None:
        """Layer i from the host into buffer i % 2, rows in the order `perm` gives."""
        k, v = self.buf[i % 2]
        for dev, host in ((k, self.host_k[i]), (v, self.host_v[i])):
            dev.copy_(host, non_blocking=self.cuda)
            dev.copy_(dev.index_select(0, self.perm))
        self._mark(i % 2)

    def _mark(self, b: int) -> None:
        if self.cuda:
            event = torch.cuda.Event()
            event.record(self.side)
            self.ready[b] = event

    def _on_side(self):
        return torch.cuda.stream(self.side) if self.cuda else contextlib.nullcontext()
