"""Finished timed calls saved as they complete, so an interrupted method resumes where it stopped.

DIR/checkpoint.jsonl holds one line per finished call of a method still in progress:
{"method", "repeat", "call", "outputs": [CallOutput as a dict]}. The line is flushed to disk
before the run moves on, so an interruption loses at most the call in flight (a torn last line
is ignored). On `--resume`, a saved call is replayed from the file instead of being run again;
the file is removed once results.json holds every method.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

CHECKPOINT_FILE = "checkpoint.jsonl"


def _output_to_dict(output) -> dict:
    return dataclasses.asdict(output)


def _output_from_dict(data: dict):
    from infercomp.calls import CallOutput, Row
    from infercomp.speculative.accounting import SpecStats

    rows = [Row(**r) for r in data.pop("rows")]
    spec = data.pop("speculative", None)
    return CallOutput(rows=rows, speculative=None if spec is None else SpecStats(**spec), **data)


class Checkpoint:
    """The saved calls of one output folder."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.saved: dict[tuple[str, int, int], list[dict]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.saved[(entry["method"], entry["repeat"], entry["call"])] = entry["outputs"]
                except (ValueError, KeyError, TypeError):
                    continue  # the call in flight when the run stopped: run again

    def calls_saved(self, method: str | None = None) -> int:
        return sum(1 for key in self.saved if method is None or key[0] == method)

    def save(self, method: str, repeat: int, call: int, outputs: list) -> None:
        entry = {"method": method, "repeat": repeat, "call": call, "outputs": [_output_to_dict(o) for o in outputs]}
        self.saved[(method, repeat, call)] = entry["outputs"]
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def hook(self, method: str) -> Callable:
        """MethodRun's call hook: replay a saved call, or run it and save it."""

        def call(repeat: int, index: int, run: Callable[[], list]) -> list:
            stored = self.saved.get((method, repeat, index))
            if stored is not None:
                return [_output_from_dict(dict(o)) for o in stored]
            outputs = run()
            self.save(method, repeat, index, outputs)
            return outputs

        return call

    def forget(self, method: str) -> None:
        """Drop a finished method's calls (results.json holds them now)."""
        self.__init__(self.path.parent)  # a worker process may have added lines
        self.saved = {k: v for k, v in self.saved.items() if k[0] != method}
        self._rewrite()

    def remove(self) -> None:
        self.saved = {}
        self.path.unlink(missing_ok=True)

    def _rewrite(self) -> None:
        if not self.saved:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for (method, repeat, call), outputs in self.saved.items():
                fh.write(json.dumps({"method": method, "repeat": repeat, "call": call, "outputs": outputs}) + "\n")
        os.replace(tmp, self.path)
