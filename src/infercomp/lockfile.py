"""One run per output folder: an exclusive lock held for the whole run.

The lock is `fcntl.flock` on DIR/.infercomp.lock, which also holds the owner's pid for the
message a second run prints. The kernel drops a flock when its process dies, so a lock left by
a killed run is simply taken over. Taking the lock also proves the folder is writable, before
any method runs.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from infercomp.config import ConfigError

LOCK_FILE = ".infercomp.lock"


class OutputLock:
    """`with OutputLock(dir):` creates the folder if needed and holds it for this process."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        d = self.directory
        if d.exists() and not d.is_dir():
            raise ConfigError(f"output folder {str(d)!r} is an existing file; choose a folder with --output-dir")
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise ConfigError(
                    f"output folder {str(d)!r} is in use by another infercomp run (pid {owner}); "
                    "wait for it to end or choose another --output-dir"
                ) from None
            # The holder before us may have removed the file between our open and our lock:
            # then we locked a file nobody else sees, so open the current one again.
            try:
                same = os.fstat(fd).st_ino == os.stat(d / LOCK_FILE).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        try:
            _probe_writable(d)
        except ConfigError:
            self.release()
            raise

    def _open(self) -> int:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            return os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise ConfigError(
                f"output folder {str(self.directory)!r} is not writable ({exc.strerror}); "
                "choose another with --output-dir"
            ) from None

    def release(self) -> None:
        if self.fd is None:
            return
        # Removed while still locked; a run that opened it meanwhile sees the inode change above.
        try:
            os.unlink(self.directory / LOCK_FILE)
        except OSError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None


def check_output_folder(directory: str | Path) -> None:
    """The checks of `acquire` without taking the lock: is it a folder we can write, not in use?"""
    lock = OutputLock(directory)
    lock.acquire()
    lock.release()


def _probe_writable(directory: Path) -> None:
    """The lock file may pre-exist in a folder made read-only since: try a real write."""
    probe = directory / f".infercomp-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"output folder {str(directory)!r} is not writable ({exc.strerror}); choose another with --output-dir"
        ) from None
